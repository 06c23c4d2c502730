// bench/pull/js_pull.mjs — @huggingface/hub's download functions.
//   node js_pull.mjs MODE HUB REPO REV OUTDIR   (run from a dir with node_modules)
// MODE "snapshot": snapshotDownload(), the library's whole-repository
//   download (files one after another, into an HF cache layout in OUTDIR).
//   A static web server cannot answer its POST paths-info, so a fetch shim
//   turns each into a GET of a pre-generated answer (hubd.py --export).
// MODE "parallel": listFiles, then downloadFile for every file at once,
//   each streamed to OUTDIR/PATH: the fastest use of the library we know.
import { listFiles, downloadFile, snapshotDownload } from "@huggingface/hub";
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

const [mode, hubUrl, repo, revision, out] = process.argv.slice(2);

async function shimFetch(url, init) {
	if (init && init.method === "POST" && String(url).includes("/paths-info/")) {
		const { paths } = JSON.parse(init.body);
		const path = paths[0].split("/").map(encodeURIComponent).join("/");
		return fetch(`${url}/${path}`, { headers: init.headers });
	}
	return fetch(url, init);
}

const t0 = performance.now();
let total = 0, n = 0;
if (mode === "snapshot") {
	await snapshotDownload({ repo, revision, hubUrl, cacheDir: out, fetch: shimFetch });
	for await (const e of listFiles({ repo, revision, recursive: true, hubUrl })) {
		if (e.type === "file") { total += e.size; n++; }
	}
} else {
	const files = [];
	for await (const e of listFiles({ repo, revision, recursive: true, hubUrl })) {
		if (e.type === "file") files.push(e);
	}
	await Promise.all(
		files.map(async (e) => {
			const blob = await downloadFile({ repo, path: e.path, revision, hubUrl });
			const dst = join(out, e.path);
			await mkdir(dirname(dst), { recursive: true });
			await pipeline(Readable.fromWeb(blob.stream()), createWriteStream(dst));
			total += e.size;
		}),
	);
	n = files.length;
}
const dt = (performance.now() - t0) / 1000;
console.log(`${mode}: ${total} bytes ${n} files ${dt.toFixed(3)} s ${(total / dt / 1e6).toFixed(1)} MB/s (not verified)`);

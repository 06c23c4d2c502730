// bench/pull/js_pull.mjs — @huggingface/hub's download functions, all files
// at once: listFiles, then downloadFile for each file streamed to disk.
//   node js_pull.mjs HUB REPO REV OUTDIR   (run from a dir with node_modules)
import { listFiles, downloadFile } from "@huggingface/hub";
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

const [hubUrl, repo, revision, out] = process.argv.slice(2);
const t0 = performance.now();
const files = [];
for await (const e of listFiles({ repo, revision, recursive: true, hubUrl })) {
	if (e.type === "file") files.push(e);
}
let total = 0;
await Promise.all(
	files.map(async (e) => {
		const blob = await downloadFile({ repo, path: e.path, revision, hubUrl });
		const dst = join(out, e.path);
		await mkdir(dirname(dst), { recursive: true });
		await pipeline(Readable.fromWeb(blob.stream()), createWriteStream(dst));
		total += e.size;
	}),
);
const dt = (performance.now() - t0) / 1000;
console.log(`${total} bytes ${files.length} files ${dt.toFixed(3)} s ${(total / dt / 1e6).toFixed(1)} MB/s (not verified)`);

/* Unit tests for meta/bom (CycloneDX 1.6, SPDX 3.0.1 validated against the
 * official JSON schemas in tests/data/schema/ with Debian's
 * python3-jsonschema; CSV) and meta/sign (OpenSSF model-signing bundles,
 * checked by modeld and by an independent verifier: Python + openssl).
 * Run from the repository root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/err.h"
#include "common/sha256.h"
#include "meta/bom.h"
#include "meta/card.h"
#include "meta/lic.h"
#include "meta/sign.h"

#define PY "/usr/bin/python3"

static char tmpdir[] = "/tmp/modeld-bom-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s (run from the repository root)", path);
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)sz + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)sz, f), (size_t)sz);
	b[sz] = '\0';
	fclose(f);
	*n = (size_t)sz;
	return b;
}

static int run(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* validate.py KIND on a JSON value written to a temp file: its exit code */
static int validate(const char *kind, json_t *doc, const char *name)
{
	char path[256], cmd[512];
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	assert_int_equal(json_dump_file(doc, path, JSON_INDENT(1)), 0);
	snprintf(cmd, sizeof cmd, PY " tests/data/schema/validate.py %s '%s'", kind, path);
	return run(cmd);
}

/* Records as the lead's audit would assemble them from the catalog. */
static json_t *records(void)
{
	size_t n, tn;
	char *cardtxt = slurp("tests/data/cards/full.md", &n);
	char *lictxt = slurp("tests/data/licenses/llama-3.1-markdown.md", &tn);
	json_t *card;
	assert_int_equal(card_parse(cardtxt, n, &card), 0);
	struct lic_ancestor anc[] = { { "meta-llama/Llama-3.1-8B", "llama3.1" },
				      { "mistralai/Mistral-7B-v0.1", "apache-2.0" },
				      { "someone/not-stored", NULL } };
	struct policy *p;
	const char *pol = "review = @restricted-use\n";
	assert_int_equal(policy_parse(pol, strlen(pol), "policy.conf", &p), 0);
	json_t *lic;
	assert_int_equal(lic_assess(card, lictxt, tn, "LICENSE.md", anc, 3, p, &lic), 0);
	policy_free(p);
	free(cardtxt);
	free(lictxt);
	json_t *card2;
	const char *c2 = "---\nlicense: cc-by-nc-4.0\npipeline_tag: image-classification\n---\n";
	assert_int_equal(card_parse(c2, strlen(c2), &card2), 0);
	json_t *lic2;
	assert_int_equal(lic_assess(card2, NULL, 0, NULL, NULL, 0, NULL, &lic2), 0);
	json_t *m = json_pack(
		"[{s:s, s:s, s:s, s:[{s:s, s:I, s:s}, {s:s, s:I, s:s}], s:o, s:{s:s, s:s, s:s, s:s, s:i}, s:o},"
		" {s:s, s:s, s:[{s:s, s:I, s:s}], s:o, s:o, s:{s:s}},"
		" {s:s}, {s:i}]",
		"name", "acme/llama-merge", "revision", "main", "commit", "0123456789abcdef0123456789abcdef01234567",
		"files", "path", "model-00001-of-00002.safetensors", "size", (json_int_t)4000000000LL, "sha256",
		"a3f1c2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90", "path", "config.json", "size",
		(json_int_t)612, "sha256", "0000000000000000000000000000000000000000000000000000000000000001",
		"license", lic, "provenance", "url", "https://huggingface.co/acme/llama-merge", "repo_id",
		"acme/llama-merge", "retrieved_at", "2026-11-23T08:00:00Z", "verified_against", "lfs-oid",
		"files_verified", 2, "card", card,
		/* second: a non-commercial image model, revision that looks like a formula */
		"name", "vision/classifier", "revision", "=HYPERLINK(\"x\"),1", "files", "path", "model.safetensors",
		"size", (json_int_t)10, "sha256", "1111111111111111111111111111111111111111111111111111111111111111",
		"license", lic2, "card", card2, "provenance", "url", "file:///srv/models/classifier",
		/* third: bare; fourth: no name (skipped) */
		"name", "bare/model", "junk", 1);
	assert_non_null(m);
	return m;
}

static json_t *find_type(json_t *graph, const char *type, size_t nth)
{
	size_t i;
	json_t *e;
	json_array_foreach(graph, i, e)
		if (!strcmp(json_string_value(json_object_get(e, "type")), type) && nth-- == 0)
			return e;
	return NULL;
}

static void test_cyclonedx(void **state)
{
	(void)state;
	json_t *m = records();
	struct bom_opts o = { "2026-11-23T08:00:00Z", "6f1c5a3e-1111-4222-8333-444455556666", "0.1.0" };
	json_t *bom;
	assert_int_equal(bom_cyclonedx(m, &o, &bom), 0);
	assert_int_equal(validate("cyclonedx", bom, "cdx.json"), 0);
	assert_string_equal(json_string_value(json_object_get(bom, "specVersion")), "1.6");
	assert_string_equal(json_string_value(json_object_get(bom, "serialNumber")),
			    "urn:uuid:6f1c5a3e-1111-4222-8333-444455556666");
	json_t *comps = json_object_get(bom, "components");
	assert_int_equal(json_array_size(comps), 3);
	json_t *c = json_array_get(comps, 0);
	assert_string_equal(json_string_value(json_object_get(c, "type")), "machine-learning-model");
	assert_string_equal(json_string_value(json_object_get(c, "purl")),
			    "pkg:huggingface/acme/llama-merge@0123456789abcdef0123456789abcdef01234567");
	json_t *files = json_object_get(c, "components");
	assert_int_equal(json_array_size(files), 2);
	json_t *h = json_array_get(json_object_get(json_array_get(files, 0), "hashes"), 0);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "SHA-256");
	assert_string_equal(json_string_value(json_object_get(h, "content")),
			    "a3f1c2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90");
	json_t *lics = json_object_get(c, "licenses");
	assert_int_equal(json_array_size(lics), 2);
	json_t *l0 = json_object_get(json_array_get(lics, 0), "license");
	assert_string_equal(json_string_value(json_object_get(l0, "name")), "LicenseRef-Llama-3.1-Community");
	assert_string_equal(json_string_value(json_object_get(l0, "acknowledgement")), "declared");
	json_t *l1 = json_object_get(json_array_get(lics, 1), "license");
	assert_string_equal(json_string_value(json_object_get(l1, "acknowledgement")), "concluded");
	json_t *anc = json_object_get(json_object_get(c, "pedigree"), "ancestors");
	assert_int_equal(json_array_size(anc), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(anc, 0), "name")), "meta-llama/Llama-3.1-8B");
	json_t *a1l = json_object_get(json_array_get(json_object_get(json_array_get(anc, 1), "licenses"), 0), "license");
	assert_string_equal(json_string_value(json_object_get(a1l, "id")), "Apache-2.0");
	json_t *mc = json_object_get(c, "modelCard");
	assert_string_equal(json_string_value(json_object_get(json_object_get(mc, "modelParameters"), "task")),
			    "text-generation");
	assert_int_equal(json_array_size(json_object_get(json_object_get(mc, "modelParameters"), "datasets")), 2);
	assert_int_equal(json_array_size(json_object_get(json_object_get(mc, "quantitativeAnalysis"), "performanceMetrics")),
			 3);
	char *s = json_dumps(c, 0);
	assert_non_null(strstr(s, "\"modeld:license.verdict\", \"value\": \"review\""));
	assert_non_null(strstr(s, "modeld:provenance.retrieved_at"));
	free(s);
	/* the second model: an SPDX id as "id" */
	json_t *c2 = json_array_get(comps, 1);
	json_t *l2 = json_object_get(json_array_get(json_object_get(c2, "licenses"), 0), "license");
	assert_string_equal(json_string_value(json_object_get(l2, "id")), "CC-BY-NC-4.0");
	/* the validator can fail: a wrong component type is refused */
	json_object_set_new(c, "type", json_string("large-language-model"));
	assert_int_equal(validate("cyclonedx", bom, "cdx-bad.json"), 1);
	json_decref(bom);
	assert_int_equal(bom_cyclonedx(json_object_get(m, "nope"), NULL, &bom), MD_EINVAL);
	/* random serial and current time when not given */
	assert_int_equal(bom_cyclonedx(m, NULL, &bom), 0);
	assert_int_equal(strlen(json_string_value(json_object_get(bom, "serialNumber"))), 45);
	assert_int_equal(validate("cyclonedx", bom, "cdx2.json"), 0);
	json_decref(bom);
	json_decref(m);
}

static void test_spdx(void **state)
{
	(void)state;
	json_t *m = records();
	struct bom_opts o = { "2026-11-23T08:00:00Z", "6f1c5a3e-1111-4222-8333-444455556666", "0.1.0" };
	json_t *doc;
	assert_int_equal(bom_spdx(m, &o, &doc), 0);
	assert_int_equal(validate("spdx", doc, "spdx.json"), 0);
	assert_string_equal(json_string_value(json_object_get(doc, "@context")),
			    "https://spdx.org/rdf/3.0.1/spdx-context.jsonld");
	json_t *g = json_object_get(doc, "@graph");
	json_t *pkg = find_type(g, "ai_AIPackage", 0);
	assert_non_null(pkg);
	assert_string_equal(json_string_value(json_object_get(pkg, "name")), "acme/llama-merge");
	assert_int_equal(json_array_size(json_object_get(pkg, "ai_metric")), 3);
	json_t *f = find_type(g, "software_File", 0);
	json_t *h = json_array_get(json_object_get(f, "verifiedUsing"), 0);
	assert_string_equal(json_string_value(json_object_get(h, "algorithm")), "sha256");
	int declared = 0, concluded = 0, ancestor = 0, trained = 0, contains = 0;
	size_t i;
	json_t *e;
	json_array_foreach(g, i, e) {
		const char *rt = json_string_value(json_object_get(e, "relationshipType"));
		if (!rt)
			continue;
		declared += !strcmp(rt, "hasDeclaredLicense");
		concluded += !strcmp(rt, "hasConcludedLicense");
		ancestor += !strcmp(rt, "ancestorOf");
		trained += !strcmp(rt, "trainedOn");
		contains += !strcmp(rt, "contains");
	}
	assert_int_equal(declared, 4); /* model 1, its two known ancestors, model 2 */
	assert_int_equal(concluded, 1);
	assert_int_equal(ancestor, 3);
	assert_int_equal(trained, 1);
	assert_int_equal(contains, 2);
	json_t *docel = find_type(g, "SpdxDocument", 0);
	assert_int_equal(json_array_size(json_object_get(docel, "rootElement")), 3);
	/* the validator can fail: an element without creationInfo is refused */
	json_object_del(pkg, "creationInfo");
	assert_int_equal(validate("spdx", doc, "spdx-bad.json"), 1);
	json_decref(doc);
	json_decref(m);
}

static void test_csv(void **state)
{
	(void)state;
	json_t *m = records();
	char *csv;
	size_t len;
	assert_int_equal(bom_csv(m, &csv, &len), 0);
	assert_int_equal(strlen(csv), len);
	assert_non_null(strstr(csv, "name,revision,commit,declared,spdx,detected,score,verdict,rule,flags,"
				    "base_models,source,files,bytes\r\n"));
	assert_non_null(strstr(csv, "acme/llama-merge,main,0123456789abcdef0123456789abcdef01234567,llama3.1,"
				    "LicenseRef-Llama-3.1-Community,LicenseRef-Llama-3.1-Community,1.0000,review,"
				    "policy.conf:1: review = @restricted-use,lineage-unknown,"
				    "meta-llama/Llama-3.1-8B;mistralai/Mistral-7B-v0.1;someone/not-stored,"
				    "https://huggingface.co/acme/llama-merge,2,4000000612\r\n"));
	/* formula-looking cell: quoted (comma, quote) and prefixed with ' */
	assert_non_null(strstr(csv, "vision/classifier,\"'=HYPERLINK(\"\"x\"\"),1\","));
	assert_non_null(strstr(csv, "bare/model,,,,NOASSERTION,"));
	int lines = 0;
	for (char *c = csv; *c; c++)
		lines += *c == '\n';
	assert_int_equal(lines, 4);
	free(csv);
	json_decref(m);
}

/* ---- signing ------------------------------------------------------------ */

static json_t *manifest(void)
{
	char d1[65], d2[65], d3[65];
	sha256_hex("weights", 7, d1);
	sha256_hex("{\"a\":1}", 7, d2);
	sha256_hex("tok", 3, d3);
	return json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]", "path", "model.safetensors", "sha256", d1, "path",
			 "config.json", "sha256", d2, "path", "tokenizer/tokenizer.json", "sha256", d3);
}

static void write_file(const char *path, const char *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
}

static void test_sign_verify(void **state)
{
	(void)state;
	char *priv, *pub;
	assert_int_equal(sign_keygen(&priv, &pub), 0);
	assert_non_null(strstr(priv, "BEGIN PRIVATE KEY"));
	assert_non_null(strstr(pub, "BEGIN PUBLIC KEY"));
	json_t *files = manifest();
	json_t *st;
	assert_int_equal(sign_statement("acme/tiny", files, &st), 0);
	json_t *res = json_object_get(json_object_get(st, "predicate"), "resources");
	assert_int_equal(json_array_size(res), 3);
	/* sorted by name, algorithm sha256 */
	assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "name")), "config.json");
	assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "algorithm")), "sha256");
	json_t *bundle;
	assert_int_equal(sign_bundle(st, priv, strlen(priv), &bundle), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(bundle, "dsseEnvelope"), "payloadType")),
			    "application/vnd.in-toto+json");
	json_t *vst = NULL;
	assert_int_equal(sign_verify(bundle, pub, strlen(pub), files, &vst), 0);
	assert_true(json_equal(vst, st));
	json_decref(vst);
	/* the private key PEM works for verification too */
	assert_int_equal(sign_verify(bundle, priv, strlen(priv), NULL, NULL), 0);

	/* independent verifier: Python stdlib + openssl pkeyutl, with files on disk */
	char path[300], cmd[1024];
	snprintf(path, sizeof path, "%s/model", tmpdir);
	snprintf(cmd, sizeof cmd, "mkdir -p '%s/tokenizer'", path);
	assert_int_equal(run(cmd), 0);
	char fp[400];
	snprintf(fp, sizeof fp, "%s/model.safetensors", path);
	write_file(fp, "weights", 7);
	snprintf(fp, sizeof fp, "%s/config.json", path);
	write_file(fp, "{\"a\":1}", 7);
	snprintf(fp, sizeof fp, "%s/tokenizer/tokenizer.json", path);
	write_file(fp, "tok", 3);
	char bpath[300], kpath[300];
	snprintf(bpath, sizeof bpath, "%s/bundle.json", tmpdir);
	snprintf(kpath, sizeof kpath, "%s/pub.pem", tmpdir);
	assert_int_equal(json_dump_file(bundle, bpath, 0), 0);
	write_file(kpath, pub, strlen(pub));
	snprintf(cmd, sizeof cmd, PY " tests/data/sign/verify.py '%s' '%s' '%s'", bpath, kpath, path);
	if (run("command -v openssl >/dev/null") == 0) {
		assert_int_equal(run(cmd), 0);
		/* and it fails when a file changes */
		snprintf(fp, sizeof fp, "%s/config.json", path);
		write_file(fp, "{\"a\":2}", 7);
		assert_int_equal(run(cmd), 1);
	} else {
		print_message("openssl command not found: third-party check skipped\n");
	}

	/* a changed, missing or extra file is named */
	json_t *f2 = json_deep_copy(files);
	char d[65];
	sha256_hex("other", 5, d);
	json_object_set_new(json_array_get(f2, 0), "sha256", json_string(d));
	md_clearerr();
	assert_int_equal(sign_verify(bundle, pub, strlen(pub), f2, NULL), MD_ECORRUPT);
	assert_non_null(strstr(md_errmsg(MD_ECORRUPT), "model.safetensors: sha256"));
	json_array_remove(f2, 0);
	assert_int_equal(sign_verify(bundle, pub, strlen(pub), f2, NULL), MD_ECORRUPT);
	assert_non_null(strstr(md_errmsg(MD_ECORRUPT), "model.safetensors: signed but not in the model"));
	json_decref(f2);
	f2 = json_deep_copy(files);
	json_array_append_new(f2, json_pack("{s:s, s:s}", "path", "extra.bin", "sha256", d));
	assert_int_equal(sign_verify(bundle, pub, strlen(pub), f2, NULL), MD_ECORRUPT);
	assert_non_null(strstr(md_errmsg(MD_ECORRUPT), "extra.bin: in the model but not covered"));
	json_decref(f2);

	/* another key: refused */
	char *priv2, *pub2;
	assert_int_equal(sign_keygen(&priv2, &pub2), 0);
	assert_int_equal(sign_verify(bundle, pub2, strlen(pub2), NULL, NULL), MD_EAUTH);
	/* a payload swapped for another statement signed by nobody: refused */
	json_t *forged = json_deep_copy(bundle);
	json_t *bundle2;
	json_t *st2;
	json_t *files2 = manifest();
	json_object_set_new(json_array_get(files2, 1), "sha256", json_string(d));
	assert_int_equal(sign_statement("acme/tiny", files2, &st2), 0);
	assert_int_equal(sign_bundle(st2, priv2, strlen(priv2), &bundle2), 0);
	json_object_set(json_object_get(forged, "dsseEnvelope"), "payload",
			json_object_get(json_object_get(bundle2, "dsseEnvelope"), "payload"));
	assert_int_equal(sign_verify(forged, pub, strlen(pub), NULL, NULL), MD_EAUTH);
	json_decref(forged);
	json_decref(bundle2);
	json_decref(st2);
	json_decref(files2);
	/* malformed bundles */
	json_t *junk = json_pack("{s:s}", "dsseEnvelope", "x");
	assert_int_equal(sign_verify(junk, pub, strlen(pub), NULL, NULL), MD_ECORRUPT);
	json_decref(junk);
	junk = json_deep_copy(bundle);
	json_object_set_new(json_object_get(junk, "dsseEnvelope"), "payload", json_string("!!!not base64"));
	assert_int_equal(sign_verify(junk, pub, strlen(pub), NULL, NULL), MD_ECORRUPT);
	json_decref(junk);
	/* bad keys */
	assert_int_equal(sign_bundle(st, "nope", 4, &bundle2), MD_EINVAL);
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(ec);
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, ec, NULL, NULL, 0, NULL, NULL);
	char *ecpem;
	long eclen = BIO_get_mem_data(b, &ecpem);
	assert_int_equal(sign_bundle(st, ecpem, (size_t)eclen, &bundle2), MD_EUNSUP);
	BIO_free(b);
	EVP_PKEY_free(ec);
	/* bad manifests */
	json_t *bad = json_pack("[{s:s, s:s}]", "path", "../etc/passwd", "sha256", d);
	json_t *x;
	assert_int_equal(sign_statement("acme/tiny", bad, &x), MD_EINVAL);
	json_decref(bad);
	bad = json_pack("[{s:s, s:s}, {s:s, s:s}]", "path", "a", "sha256", d, "path", "a", "sha256", d);
	assert_int_equal(sign_statement("acme/tiny", bad, &x), MD_EINVAL);
	assert_non_null(strstr(md_errmsg(MD_EINVAL), "a: listed twice"));
	json_decref(bad);
	bad = json_pack("[{s:s, s:s}]", "path", "a", "sha256", "abc");
	assert_int_equal(sign_statement("acme/tiny", bad, &x), MD_EINVAL);
	json_decref(bad);
	bad = json_array();
	assert_int_equal(sign_statement("acme/tiny", bad, &x), MD_EINVAL);
	json_decref(bad);

	free(priv2);
	free(pub2);
	json_decref(bundle);
	json_decref(st);
	json_decref(files);
	free(priv);
	free(pub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cyclonedx),
		cmocka_unit_test(test_spdx),
		cmocka_unit_test(test_csv),
		cmocka_unit_test(test_sign_verify),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

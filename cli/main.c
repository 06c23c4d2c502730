/* cli/main.c — modelctl: options and command dispatch. See modelctl(1). */
#include "cli/cli.h"
#include "common/err.h"
#include "common/util.h"
#include "common/version.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: modelctl [--socket PATH] [--json] [-q] COMMAND [ARGS]\n"
	"       modelctl --help | --version\n"
	"commands:\n"
	"  import DIR [--name ORG/NAME] [--detach]   import an HF-layout folder\n"
	"  pull ORG/NAME[@REV] [--hub URL] [--token-file F] [--include G]... [--exclude G]...\n"
	"       [--limit-rate R] [--name ORG/NAME] [--detach]\n"
	"                                            import from a Hugging Face-style hub\n"
	"  pull git+URL[@REF] [--source git] [--include G]... [--exclude G]... [--name ORG/NAME]\n"
	"       [--limit-rate R] [--detach]\n"
	"                                            import a git repository (Git LFS too)\n"
	"  list                                      stored models and revisions\n"
	"  show ORG/NAME[@REV]                       one revision in detail\n"
	"  cat ORG/NAME[@REV] PATH                   a file's original bytes to stdout\n"
	"  verify [ORG/NAME[@REV]]                   re-hash stored bytes\n"
	"  rm ORG/NAME[@REV]                         remove a model or one revision\n"
	"  gc [--partial]                            remove unreferenced data; --partial:\n"
	"                                            also what interrupted pulls keep to resume\n"
	"  jobs                                      running and recent jobs\n"
	"  cancel ID                                 stop a job\n"
	"  status                                    the daemon's version and store\n"
	"  license ORG/NAME[@REV]                    declared and detected license, lineage\n"
	"  audit [--policy FILE] [--format F]        every model's license verdict; F: table,\n"
	"                                            json, csv, cyclonedx, spdx; exit 1 on deny\n"
	"  tensors ORG/NAME[@REV]                    tensor tables of the weight files\n"
	"  export ORG/NAME[@REV] --format safetensors|gguf -o DIR\n"
	"                                            write fresh weight files from the packs\n"
	"  export ORG/NAME[@REV]... -o FILE.tar[.zst] [--sign KEY]\n"
	"                                            a bundle for another store (docs/airgap.md)\n"
	"  import FILE.tar[.zst] [--verify-key PUB]  import a bundle (all or nothing)\n"
	"  sign ORG/NAME[@REV] --key KEY [-o FILE]   a detached signature (docs/signing.md)\n"
	"  verify ORG/NAME[@REV] --signature FILE --key PUB   check one against the store\n"
	"  list [FILTERS] [--sort name|params|size|imported]   filtered list (indexed)\n"
	"  search QUERY [FILTERS] [--hub URL] [--limit N]     local catalog or a hub\n"
	"  compare A B [C...]                        parameters, memory, license, benchmarks\n"
	"FILTERS: --task T --provider ORG --license ID --library L --size small|large|CLASS\n"
	"         --min-params N --max-params N (7B, 350M, 1.5e9) --fits MEM (24GiB, 80GB)\n";

static const struct {
	const char *name;
	int (*fn)(struct cli *);
} cmds[] = {
	{ "import", cmd_import }, { "list", cmd_list }, { "ls", cmd_list },
	{ "show", cmd_show }, { "cat", cmd_cat }, { "verify", cmd_verify },
	{ "rm", cmd_rm }, { "gc", cmd_gc }, { "jobs", cmd_jobs },
	{ "cancel", cmd_cancel }, { "status", cmd_status },
	{ "license", cmd_license }, { "audit", cmd_audit },
	{ "tensors", cmd_tensors }, { "export", cmd_export }, { "pull", cmd_pull },
	{ "sign", cmd_sign },
	{ "search", cmd_search }, { "compare", cmd_compare },
};

/* One line naming what is wrong (modelctl(1): errors are one line); the
 * summary only when no command was given at all. */
int cli_usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "modelctl: %s\n", msg);
	else
		fputs(usage_text, stderr);
	cli_error_doc(MD_EINVAL, msg ? msg : "no command given");
	return EXIT_USAGE;
}

/* An option that takes one value, given twice: which one was meant would be a
 * guess (--include and --exclude are the repeatable ones). */
static int given_twice(const char *flag, const char *first, const char *second)
{
	char msg[600];
	snprintf(msg, sizeof msg, "%s given twice ('%.200s' and '%.200s'); give it once", flag, first,
		 second);
	return cli_usage(msg);
}

/* No option that takes one value means anything by an empty one ('' would
 * otherwise reach a message as ": path too long" or an unnamed socket). */
static int empty_value(const char *flag)
{
	char msg[120];
	snprintf(msg, sizeof msg, "%s: empty value", flag);
	return cli_usage(msg);
}

#define SET_ONCE(field, flag)                                          \
	do {                                                           \
		if (field)                                             \
			return given_twice(flag, field, optarg);       \
		if (!*optarg)                                          \
			return empty_value(flag);                      \
		field = optarg;                                        \
	} while (0)

int main(int argc, char **argv)
{
	struct cli c = { 0 };
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "name", required_argument, NULL, 'N' },
		{ "detach", no_argument, NULL, 'd' },
		{ "partial", no_argument, NULL, 1102 },
		{ "policy", required_argument, NULL, 'P' },
		{ "format", required_argument, NULL, 'F' },
		{ "output", required_argument, NULL, 'o' },
		{ "hub", required_argument, NULL, 'H' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "source", required_argument, NULL, 'G' },
		{ "limit-rate", required_argument, NULL, 'R' },
		{ "include", required_argument, NULL, 'I' },
		{ "exclude", required_argument, NULL, 'X' },
		{ "sign", required_argument, NULL, 'K' },
		{ "verify-key", required_argument, NULL, 'V' },
		{ "key", required_argument, NULL, 1100 },
		{ "signature", required_argument, NULL, 1101 },
		{ "task", required_argument, NULL, 1000 },
		{ "provider", required_argument, NULL, 1001 },
		{ "license", required_argument, NULL, 1002 },
		{ "library", required_argument, NULL, 1003 },
		{ "size", required_argument, NULL, 1004 },
		{ "min-params", required_argument, NULL, 1005 },
		{ "max-params", required_argument, NULL, 1006 },
		{ "fits", required_argument, NULL, 1007 },
		{ "sort", required_argument, NULL, 1008 },
		{ "limit", required_argument, NULL, 1010 },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 1200 },
		{ NULL, 0, NULL, 0 },
	};
	int ch, version = 0;
	opterr = 0;
	/* before parsing: a usage error found while parsing is a document too */
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--json"))
			cli_json_errors(1);
	while ((ch = getopt_long(argc, argv, "qho:", lo, NULL)) != -1) {
		switch (ch) {
		case 'S': SET_ONCE(c.socket, "--socket"); break;
		case 'j': c.json = 1; break;
		case 'q': c.quiet = 1; break;
		case 'N': SET_ONCE(c.name, "--name"); break;
		case 'd': c.detach = 1; break;
		case 'P': SET_ONCE(c.policy, "--policy"); break;
		case 'F': SET_ONCE(c.format, "--format"); break;
		case 'o': SET_ONCE(c.output, "-o"); break;
		case 'H': SET_ONCE(c.hub, "--hub"); break;
		case 'T': SET_ONCE(c.token_file, "--token-file"); break;
		case 'G': SET_ONCE(c.source, "--source"); break;
		case 'R': SET_ONCE(c.limit_rate, "--limit-rate"); break;
		case 'I':
			if (c.ninclude == 64)
				return cli_usage("too many --include patterns (64 at most)");
			c.include[c.ninclude++] = optarg;
			break;
		case 'X':
			if (c.nexclude == 64)
				return cli_usage("too many --exclude patterns (64 at most)");
			c.exclude[c.nexclude++] = optarg;
			break;
		case 'K': SET_ONCE(c.sign_key, "--sign"); break;
		case 'V': SET_ONCE(c.verify_key, "--verify-key"); break;
		case 1100: SET_ONCE(c.key, "--key"); break;
		case 1101: SET_ONCE(c.signature, "--signature"); break;
		case 1102: c.partial = 1; break;
		case 1000: SET_ONCE(c.task, "--task"); break;
		case 1001: SET_ONCE(c.provider, "--provider"); break;
		case 1002: SET_ONCE(c.license, "--license"); break;
		case 1003: SET_ONCE(c.library, "--library"); break;
		case 1004: SET_ONCE(c.size, "--size"); break;
		case 1005: SET_ONCE(c.min_params, "--min-params"); break;
		case 1006: SET_ONCE(c.max_params, "--max-params"); break;
		case 1007: SET_ONCE(c.fits, "--fits"); break;
		case 1008: SET_ONCE(c.sort, "--sort"); break;
		case 1010: SET_ONCE(c.limit, "--limit"); break;
		case 'h': fputs(usage_text, stdout); return EXIT_OK;
		case 1200: version = 1; break;
		default: {
			/* mid-cluster ("-acme/tiny": 'a' unknown, "cme/tiny" left)
			 * getopt has not moved past the word yet: name that word,
			 * not the one before it */
			const char *bad = argv[optind - 1];
			if (optopt && optind < argc && argv[optind][0] == '-' && argv[optind][1] != '-' &&
			    strchr(argv[optind] + 1, optopt))
				bad = argv[optind];
			char msg[300];
			snprintf(msg, sizeof msg, "unknown or incomplete option '%.200s' (see modelctl --help)",
				 bad);
			return cli_usage(msg);
		}
		}
	}
	if (version) { /* after parsing, so that --json anywhere applies */
		printf(c.json ? "{\"version\": \"%s\"}\n" : "modelctl %s\n", MODELD_VERSION);
		return EXIT_OK;
	}
	if (optind >= argc)
		return cli_usage(NULL);
	const char *cmd = argv[optind];
	c.argc = argc - optind - 1;
	c.argv = argv + optind + 1;
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		if (strcmp(cmds[i].name, cmd))
			continue;
		if (c.name && strcmp(cmd, "import") && strcmp(cmd, "pull"))
			return cli_usage("--name only applies to import and pull");
		if ((c.hub || c.token_file || c.source || c.limit_rate || c.ninclude || c.nexclude) &&
		    strcmp(cmd, "pull") && strcmp(cmd, "search"))
			return cli_usage("--hub, --token-file, --source, --limit-rate, --include and "
					 "--exclude apply to pull");
		const char *why = c.hub ? util_hub_url_problem(c.hub) : NULL;
		if (why) {
			char msg[300];
			snprintf(msg, sizeof msg, "--hub '%.200s': %s", c.hub, why);
			return cli_usage(msg);
		}
		if (c.policy && strcmp(cmd, "audit"))
			return cli_usage("--policy only applies to audit");
		if (c.format && strcmp(cmd, "audit") && strcmp(cmd, "export"))
			return cli_usage("--format only applies to audit and export");
		if (c.sign_key && strcmp(cmd, "export"))
			return cli_usage("--sign only applies to export");
		if (c.output && strcmp(cmd, "export") && strcmp(cmd, "sign"))
			return cli_usage("-o only applies to export and sign");
		if (c.key && strcmp(cmd, "sign") && strcmp(cmd, "verify"))
			return cli_usage("--key only applies to sign and verify --signature");
		if (c.key && !strcmp(cmd, "verify") && !c.signature)
			return cli_usage("--key with verify needs --signature FILE");
		if (c.signature && strcmp(cmd, "verify"))
			return cli_usage("--signature only applies to verify");
		if (c.partial && strcmp(cmd, "gc"))
			return cli_usage("--partial only applies to gc");
		if (c.detach && strcmp(cmd, "import") && strcmp(cmd, "pull") && strcmp(cmd, "verify"))
			return cli_usage("--detach only applies to import, pull and verify");
		if (c.verify_key && strcmp(cmd, "import"))
			return cli_usage("--verify-key only applies to import");
		if ((cli_has_filters(&c) || c.sort) && strcmp(cmd, "list") && strcmp(cmd, "ls") &&
		    strcmp(cmd, "search"))
			return cli_usage("filters and --sort only apply to list and search");
		if (c.limit && strcmp(cmd, "search"))
			return cli_usage("--limit only applies to search");
		int rc = cmds[i].fn(&c);
		rpc_close(c.rpc);
		if (fflush(stdout) != 0 && rc == EXIT_OK) {
			perror("modelctl: stdout");
			rc = EXIT_FAIL;
		}
		return rc;
	}
	char msg[300];
	snprintf(msg, sizeof msg, "unknown command '%.200s' (see modelctl --help)", cmd);
	return cli_usage(msg);
}

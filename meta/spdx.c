/*
 * meta/spdx.c — the Hub -> SPDX table and license classes. See spdx.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "meta/spdx.h"

#define P SPDX_PERMISSIVE
#define PD (SPDX_PUBLIC_DOMAIN | SPDX_PERMISSIVE)
#define WC SPDX_WEAK_COPYLEFT
#define CL SPDX_COPYLEFT
#define NC SPDX_NONCOMMERCIAL
#define ND SPDX_NODERIVS
#define RU SPDX_RESTRICTED
#define UNK SPDX_UNKNOWN

/*
 * Hub identifiers: the list documented at huggingface.co/docs/hub/
 * repositories-licenses (every row), plus identifiers the Hub accepts for
 * model licenses added after that list (llama3, llama3.1, llama3.2, llama3.3,
 * llama4, apple-ascl, apple-amlr, intel-research, h-research,
 * fair-noncommercial-research-license, eupl-1.2, openmdw-1.0), and the
 * license_name values of DeepSeek, Qwen and Mistral research models. Rows with hub
 * == NULL are SPDX ids that only appear through detection or policies.
 */
static const struct spdx_license table[] = {
	{ "apache-2.0", "Apache-2.0", "Apache License 2.0", P, "apache" },
	{ "mit", "MIT", "MIT License", P, "mit" },
	{ "openrail", "LicenseRef-OpenRAIL", "OpenRAIL license family", RU, "rail" },
	{ "bigscience-openrail-m", "LicenseRef-BigScience-OpenRAIL-M", "BigScience OpenRAIL-M", RU, "rail" },
	{ "creativeml-openrail-m", "LicenseRef-CreativeML-OpenRAIL-M", "CreativeML OpenRAIL-M", RU, "rail" },
	{ "bigscience-bloom-rail-1.0", "LicenseRef-BigScience-BLOOM-RAIL-1.0", "BigScience BLOOM RAIL 1.0", RU, "rail" },
	{ "bigcode-openrail-m", "LicenseRef-BigCode-OpenRAIL-M", "BigCode Open RAIL-M v1", RU, "rail" },
	{ "openrail++", "LicenseRef-OpenRAIL-PlusPlus-M", "Open Rail++-M License", RU, "rail" },
	{ "afl-3.0", "AFL-3.0", "Academic Free License v3.0", P, NULL },
	{ "artistic-2.0", "Artistic-2.0", "Artistic License 2.0", WC, NULL },
	{ "bsl-1.0", "BSL-1.0", "Boost Software License 1.0", P, NULL },
	{ "bsd", "LicenseRef-BSD", "BSD license family", P, "bsd" },
	{ "bsd-2-clause", "BSD-2-Clause", "BSD 2-Clause \"Simplified\" License", P, "bsd" },
	{ "bsd-3-clause", "BSD-3-Clause", "BSD 3-Clause \"New\" or \"Revised\" License", P, "bsd" },
	{ "bsd-3-clause-clear", "BSD-3-Clause-Clear", "BSD 3-Clause Clear License", P, "bsd" },
	{ "c-uda", "C-UDA-1.0", "Computational Use of Data Agreement 1.0", RU, NULL },
	{ "cc", "LicenseRef-CC", "Creative Commons license family", UNK, "cc" },
	{ "cc0-1.0", "CC0-1.0", "Creative Commons Zero v1.0 Universal", PD, "cc" },
	{ "cc-by-2.0", "CC-BY-2.0", "Creative Commons Attribution 2.0", P, "cc" },
	{ "cc-by-2.5", "CC-BY-2.5", "Creative Commons Attribution 2.5", P, "cc" },
	{ "cc-by-3.0", "CC-BY-3.0", "Creative Commons Attribution 3.0", P, "cc" },
	{ "cc-by-4.0", "CC-BY-4.0", "Creative Commons Attribution 4.0", P, "cc" },
	{ "cc-by-sa-3.0", "CC-BY-SA-3.0", "Creative Commons Attribution Share Alike 3.0", CL, "cc" },
	{ "cc-by-sa-4.0", "CC-BY-SA-4.0", "Creative Commons Attribution Share Alike 4.0", CL, "cc" },
	{ "cc-by-nc-2.0", "CC-BY-NC-2.0", "Creative Commons Attribution Non Commercial 2.0", NC, "cc" },
	{ "cc-by-nc-3.0", "CC-BY-NC-3.0", "Creative Commons Attribution Non Commercial 3.0", NC, "cc" },
	{ "cc-by-nc-4.0", "CC-BY-NC-4.0", "Creative Commons Attribution Non Commercial 4.0", NC, "cc" },
	{ "cc-by-nd-4.0", "CC-BY-ND-4.0", "Creative Commons Attribution No Derivatives 4.0", ND, "cc" },
	{ "cc-by-nc-nd-3.0", "CC-BY-NC-ND-3.0", "Creative Commons Attribution Non Commercial No Derivatives 3.0", NC | ND, "cc" },
	{ "cc-by-nc-nd-4.0", "CC-BY-NC-ND-4.0", "Creative Commons Attribution Non Commercial No Derivatives 4.0", NC | ND, "cc" },
	{ "cc-by-nc-sa-2.0", "CC-BY-NC-SA-2.0", "Creative Commons Attribution Non Commercial Share Alike 2.0", NC | CL, "cc" },
	{ "cc-by-nc-sa-3.0", "CC-BY-NC-SA-3.0", "Creative Commons Attribution Non Commercial Share Alike 3.0", NC | CL, "cc" },
	{ "cc-by-nc-sa-4.0", "CC-BY-NC-SA-4.0", "Creative Commons Attribution Non Commercial Share Alike 4.0", NC | CL, "cc" },
	{ "cdla-sharing-1.0", "CDLA-Sharing-1.0", "Community Data License Agreement - Sharing 1.0", CL, "cdla" },
	{ "cdla-permissive-1.0", "CDLA-Permissive-1.0", "Community Data License Agreement - Permissive 1.0", P, "cdla" },
	{ "cdla-permissive-2.0", "CDLA-Permissive-2.0", "Community Data License Agreement - Permissive 2.0", P, "cdla" },
	{ "wtfpl", "WTFPL", "Do What The F*ck You Want To Public License", P, NULL },
	{ "ecl-2.0", "ECL-2.0", "Educational Community License v2.0", P, NULL },
	{ "epl-1.0", "EPL-1.0", "Eclipse Public License 1.0", WC, "epl" },
	{ "epl-2.0", "EPL-2.0", "Eclipse Public License 2.0", WC, "epl" },
	{ "etalab-2.0", "etalab-2.0", "Etalab Open License 2.0", P, NULL },
	{ "eupl-1.1", "EUPL-1.1", "European Union Public License 1.1", CL, "eupl" },
	{ "eupl-1.2", "EUPL-1.2", "European Union Public License 1.2", CL, "eupl" },
	{ "agpl-3.0", "AGPL-3.0-only", "GNU Affero General Public License v3.0 only", CL, "gpl" },
	{ "gfdl", "LicenseRef-GFDL", "GNU Free Documentation License family", CL, "gpl" },
	{ "gpl", "LicenseRef-GPL", "GNU General Public License family", CL, "gpl" },
	{ "gpl-2.0", "GPL-2.0-only", "GNU General Public License v2.0 only", CL, "gpl" },
	{ "gpl-3.0", "GPL-3.0-only", "GNU General Public License v3.0 only", CL, "gpl" },
	{ "lgpl", "LicenseRef-LGPL", "GNU Lesser General Public License family", WC, "gpl" },
	{ "lgpl-2.1", "LGPL-2.1-only", "GNU Lesser General Public License v2.1 only", WC, "gpl" },
	{ "lgpl-3.0", "LGPL-3.0-only", "GNU Lesser General Public License v3.0 only", WC, "gpl" },
	{ "isc", "ISC", "ISC License", P, NULL },
	{ "h-research", "LicenseRef-H-Research", "H Research License", NC, NULL },
	{ "intel-research", "LicenseRef-Intel-Research", "Intel Research Use License", NC, NULL },
	{ "lppl-1.3c", "LPPL-1.3c", "LaTeX Project Public License v1.3c", WC, NULL },
	{ "ms-pl", "MS-PL", "Microsoft Public License", WC, NULL },
	{ "apple-ascl", "LicenseRef-Apple-ASCL", "Apple Sample Code License", P, "apple" },
	{ "apple-amlr", "LicenseRef-Apple-AMLR", "Apple Machine Learning Research Model License", NC | RU, "apple" },
	{ "mpl-2.0", "MPL-2.0", "Mozilla Public License 2.0", WC, NULL },
	{ "odc-by", "ODC-By-1.0", "Open Data Commons Attribution License", P, "odc" },
	{ "odbl", "ODbL-1.0", "Open Database License", CL, "odc" },
	{ "openmdw-1.0", "OpenMDW-1.0", "OpenMDW License 1.0", P, NULL },
	{ "osl-3.0", "OSL-3.0", "Open Software License 3.0", CL, NULL },
	{ "postgresql", "PostgreSQL", "PostgreSQL License", P, NULL },
	{ "ofl-1.1", "OFL-1.1", "SIL Open Font License 1.1", WC, NULL },
	{ "ncsa", "NCSA", "University of Illinois/NCSA Open Source License", P, NULL },
	{ "unlicense", "Unlicense", "The Unlicense", PD, NULL },
	{ "zlib", "Zlib", "zlib License", P, NULL },
	{ "pddl", "PDDL-1.0", "Open Data Commons Public Domain Dedication and License", PD, "odc" },
	{ "lgpl-lr", "LicenseRef-LGPL-LR", "Lesser General Public License For Linguistic Resources", WC, NULL },
	{ "deepfloyd-if-license", "LicenseRef-DeepFloyd-IF", "DeepFloyd IF Research License Agreement", NC | RU, NULL },
	{ "fair-noncommercial-research-license", "LicenseRef-FAIR-Noncommercial-Research", "FAIR Noncommercial Research License", NC | RU, NULL },
	{ "llama2", "LicenseRef-Llama-2-Community", "Llama 2 Community License Agreement", RU, "llama" },
	{ "llama3", "LicenseRef-Llama-3-Community", "Meta Llama 3 Community License Agreement", RU, "llama" },
	{ "llama3.1", "LicenseRef-Llama-3.1-Community", "Llama 3.1 Community License Agreement", RU, "llama" },
	{ "llama3.2", "LicenseRef-Llama-3.2-Community", "Llama 3.2 Community License Agreement", RU, "llama" },
	{ "llama3.3", "LicenseRef-Llama-3.3-Community", "Llama 3.3 Community License Agreement", RU, "llama" },
	{ "llama4", "LicenseRef-Llama-4-Community", "Llama 4 Community License Agreement", RU, "llama" },
	{ "gemma", "LicenseRef-Gemma", "Gemma Terms of Use", RU, "gemma" },
	/* not Hub ids: the license_name values these vendors put under
	 * `license: other` (and that cards sometimes write as the license) */
	{ "deepseek", "LicenseRef-DeepSeek", "DeepSeek License Agreement", RU, "deepseek" },
	{ "qwen", "LicenseRef-Qwen", "Qwen License Agreement", RU, "qwen" },
	{ "qwen-research", "LicenseRef-Qwen-Research", "Qwen Research License Agreement", NC | RU, "qwen" },
	{ "mistral-research", "LicenseRef-Mistral-Research", "Mistral AI Research License", NC | RU, "mistral" },
	{ "unknown", "NOASSERTION", "Unknown", UNK, NULL },
	{ "other", "LicenseRef-other", "Other (see license_name / LICENSE)", UNK, NULL },
	/* SPDX ids reachable only by detection or policy */
	{ NULL, "MIT-0", "MIT No Attribution", PD, "mit" },
	{ NULL, "0BSD", "BSD Zero Clause License", PD, "bsd" },
	{ NULL, "GPL-2.0-or-later", "GNU General Public License v2.0 or later", CL, "gpl" },
	{ NULL, "GPL-3.0-or-later", "GNU General Public License v3.0 or later", CL, "gpl" },
	{ NULL, "LGPL-2.1-or-later", "GNU Lesser General Public License v2.1 or later", WC, "gpl" },
	{ NULL, "LGPL-3.0-or-later", "GNU Lesser General Public License v3.0 or later", WC, "gpl" },
	{ NULL, "AGPL-3.0-or-later", "GNU Affero General Public License v3.0 or later", CL, "gpl" },
};

#define NTABLE (sizeof table / sizeof table[0])

size_t spdx_count(void)
{
	return NTABLE;
}

const struct spdx_license *spdx_at(size_t i)
{
	return i < NTABLE ? &table[i] : NULL;
}

/* Other names cards use for a table row's license (license_name values). */
static const struct {
	const char *alias, *hub;
} aliases[] = {
	{ "deepseek-license", "deepseek" },
	{ "tongyi-qianwen", "qwen" },
	{ "mrl", "mistral-research" },
};

const struct spdx_license *spdx_lookup(const char *id)
{
	if (!id)
		return NULL;
	for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
		if (!strcasecmp(id, aliases[i].alias))
			id = aliases[i].hub;
	for (size_t i = 0; i < NTABLE; i++)
		if ((table[i].hub && !strcasecmp(id, table[i].hub)) || !strcasecmp(id, table[i].id))
			return &table[i];
	return NULL;
}

/* Append s to out (capacity cap) keeping only [A-Za-z0-9.-], others -> '-',
 * no leading/trailing/double '-'. */
static void sanitize_into(char *out, size_t cap, const char *s)
{
	size_t n = strlen(out);
	int dash = n > 0 && out[n - 1] == '-';
	for (; *s && n + 1 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.';
		if (ok) {
			out[n++] = (char)c;
			dash = 0;
		} else if (!dash && n > 0 && out[n - 1] != '-') {
			out[n++] = '-';
			dash = 1;
		}
	}
	out[n] = '\0';
	while (n > 0 && out[n - 1] == '-')
		out[--n] = '\0';
}

int spdx_normalize(const char *id, const char *license_name, char **out)
{
	char buf[256];
	*out = NULL;
	while (id && (*id == ' ' || *id == '\t'))
		id++;
	if (!id || !*id || !strcasecmp(id, "unknown") || !strcasecmp(id, "NOASSERTION")) {
		snprintf(buf, sizeof buf, "NOASSERTION");
	} else if ((!strcasecmp(id, "other") || !strcasecmp(id, "LicenseRef-other")) && license_name &&
		   spdx_lookup(license_name) && !strncmp(spdx_lookup(license_name)->id, "LicenseRef-", 11) &&
		   strcmp(spdx_lookup(license_name)->id, "LicenseRef-other")) {
		/* other + license_name: qwen / deepseek / mrl / llama3: a license
		 * the table knows by that name, with its classes */
		snprintf(buf, sizeof buf, "%s", spdx_lookup(license_name)->id);
	} else if (!strcasecmp(id, "other") || !strcasecmp(id, "LicenseRef-other")) {
		snprintf(buf, sizeof buf, "LicenseRef-");
		if (license_name && *license_name) {
			char name[201];
			snprintf(name, sizeof name, "%s", license_name);
			sanitize_into(buf, sizeof buf, name);
		}
		if (!strcmp(buf, "LicenseRef-"))
			snprintf(buf, sizeof buf, "LicenseRef-other");
	} else {
		const struct spdx_license *l = spdx_lookup(id);
		if (l) {
			snprintf(buf, sizeof buf, "%s", l->id);
		} else {
			char in[201];
			snprintf(in, sizeof in, "%s", id);
			const char *rest = in;
			if (!strncasecmp(in, "LicenseRef-", 11))
				rest = in + 11;
			snprintf(buf, sizeof buf, "LicenseRef-");
			sanitize_into(buf, sizeof buf, rest);
			if (!strcmp(buf, "LicenseRef-"))
				snprintf(buf, sizeof buf, "NOASSERTION");
		}
	}
	*out = strdup(buf);
	return *out ? 0 : md_fail(MD_ENOMEM, "spdx: out of memory");
}

unsigned spdx_classes(const char *id)
{
	const struct spdx_license *l = spdx_lookup(id);
	return l ? l->classes : SPDX_UNKNOWN;
}

const char *spdx_family(const char *id)
{
	const struct spdx_license *l = spdx_lookup(id);
	return l ? l->family : NULL;
}

static const struct {
	unsigned bit;
	const char *name;
} class_names[] = {
	{ SPDX_PERMISSIVE, "permissive" },
	{ SPDX_PUBLIC_DOMAIN, "public-domain" },
	{ SPDX_WEAK_COPYLEFT, "weak-copyleft" },
	{ SPDX_COPYLEFT, "copyleft" },
	{ SPDX_NONCOMMERCIAL, "non-commercial" },
	{ SPDX_NODERIVS, "no-derivatives" },
	{ SPDX_RESTRICTED, "restricted-use" },
	{ SPDX_UNKNOWN, "unknown" },
};

const char *spdx_class_name(unsigned bit)
{
	for (size_t i = 0; i < sizeof class_names / sizeof class_names[0]; i++)
		if (class_names[i].bit == bit)
			return class_names[i].name;
	return NULL;
}

int spdx_class_parse(const char *name, unsigned *bit)
{
	for (size_t i = 0; i < sizeof class_names / sizeof class_names[0]; i++)
		if (!strcasecmp(class_names[i].name, name)) {
			*bit = class_names[i].bit;
			return 0;
		}
	return MD_EINVAL;
}

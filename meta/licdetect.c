/*
 * meta/licdetect.c — license text normalization and bigram Dice matching.
 * See licdetect.h for the contract and docs/licenses.md for the method.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "meta/licdetect.h"

#define TOK_MAX 64 /* bytes of a token kept (longer tokens are cut) */

/* ---- normalization ------------------------------------------------------ */

/* SPDX matching guidelines, equivalent words (British -> American and
 * variants); applied to single lower-case tokens. */
static const char *const equiv[][2] = {
	{ "licence", "license" }, { "licences", "licenses" }, { "licenced", "licensed" },
	{ "licencing", "licensing" }, { "licencee", "licensee" }, { "licencor", "licensor" },
	{ "acknowledgement", "acknowledgment" }, { "analogue", "analog" }, { "analyse", "analyze" },
	{ "artefact", "artifact" }, { "authorisation", "authorization" }, { "authorised", "authorized" },
	{ "authorise", "authorize" }, { "calibre", "caliber" }, { "cancelled", "canceled" },
	{ "catalogue", "catalog" }, { "categorise", "categorize" }, { "centre", "center" },
	{ "emphasised", "emphasized" }, { "favour", "favor" }, { "favourite", "favorite" },
	{ "fulfil", "fulfill" }, { "fulfilment", "fulfillment" }, { "initialise", "initialize" },
	{ "judgement", "judgment" }, { "labelling", "labeling" }, { "labour", "labor" },
	{ "maximise", "maximize" }, { "modelled", "modeled" }, { "modelling", "modeling" },
	{ "offence", "offense" }, { "optimise", "optimize" }, { "organisation", "organization" },
	{ "organise", "organize" }, { "practise", "practice" }, { "programme", "program" },
	{ "realise", "realize" }, { "recognise", "recognize" }, { "signalling", "signaling" },
	{ "utilisation", "utilization" }, { "whilst", "while" }, { "wilful", "willful" },
	{ "behaviour", "behavior" }, { "https", "http" }, { "percent", "percent" },
};

struct toks {
	char *text;       /* optional: space-separated words (licdetect_normalize) */
	size_t tlen, tcap;
	uint64_t *h;      /* optional: token hashes */
	size_t n, cap;
	int oom;
};

static uint64_t fnv(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void emit(struct toks *t, const char *w, size_t n)
{
	if (t->oom)
		return;
	for (size_t i = 0; i < sizeof equiv / sizeof equiv[0]; i++)
		if (strlen(equiv[i][0]) == n && !memcmp(w, equiv[i][0], n)) {
			w = equiv[i][1];
			n = strlen(w);
			break;
		}
	if (t->h) {
		if (t->n == t->cap) {
			size_t nc = t->cap ? t->cap * 2 : 1024;
			uint64_t *p = realloc(t->h, nc * sizeof *p);
			if (!p) {
				t->oom = 1;
				return;
			}
			t->h = p;
			t->cap = nc;
		}
		t->h[t->n++] = fnv(w, n);
	} else {
		t->n++;
	}
	if (t->text || t->tcap == (size_t)-1) {
		if (t->tlen + n + 2 > t->tcap || !t->text) {
			size_t nc = (t->tcap == (size_t)-1 || !t->text) ? 4096 : t->tcap * 2;
			while (nc < t->tlen + n + 2)
				nc *= 2;
			char *p = realloc(t->text, nc);
			if (!p) {
				t->oom = 1;
				return;
			}
			t->text = p;
			t->tcap = nc;
		}
		if (t->tlen)
			t->text[t->tlen++] = ' ';
		memcpy(t->text + t->tlen, w, n);
		t->tlen += n;
		t->text[t->tlen] = '\0';
	}
}

static int is_markup(int c)
{
	return c == '#' || c == '*' || c == '>' || c == '-' || c == '+' || c == '_' || c == '`' ||
	       c == '|' || c == '\\' || c == '=' || c == '~';
}

static int is_wordbyte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Decode one UTF-8 sequence at s (n bytes left): code point, length in *len.
 * Invalid bytes decode as U+FFFD, length 1. */
static uint32_t utf8(const unsigned char *s, size_t n, size_t *len)
{
	*len = 1;
	if (s[0] < 0x80)
		return s[0];
	int k = s[0] >= 0xF0 ? 3 : s[0] >= 0xE0 ? 2 : s[0] >= 0xC0 ? 1 : -1;
	if (k < 0 || (size_t)k >= n)
		return 0xFFFD;
	uint32_t cp = s[0] & (0x3F >> k);
	for (int i = 1; i <= k; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0xFFFD;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	*len = (size_t)k + 1;
	return cp;
}

/* Non-ASCII code points treated as punctuation or space (quotes, dashes,
 * bullets, no-break space, (c), section sign, ...). Everything else above
 * 0x7F is a letter. */
static int cp_is_sep(uint32_t cp)
{
	return cp == 0xA0 || cp == 0xA7 || cp == 0xA9 || cp == 0xAB || cp == 0xBB || cp == 0xB7 ||
	       cp == 0xAE || (cp >= 0x2000 && cp <= 0x206F) || cp == 0x2122 || cp == 0x2212 ||
	       cp == 0xFEFF || cp == 0xFFFD || cp == 0x25CF || cp == 0x25AA || cp == 0x25E6 ||
	       cp == 0x3000;
}

/* A copyright notice line: optional markup, then "copyright" followed by
 * (c), ©, a year or a placeholder; or "(c) YEAR"; or "©". Such lines are
 * ignored (SPDX guideline: copyright notices are not part of the license). */
static int copyright_line(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && (s[i] == ' ' || s[i] == '\t' || is_markup((unsigned char)s[i])))
		i++;
	if (i + 2 <= n && (unsigned char)s[i] == 0xC2 && (unsigned char)s[i + 1] == 0xA9)
		return 1;
	if (i + 3 <= n && !strncasecmp(s + i, "(c)", 3)) {
		i += 3;
		while (i < n && s[i] == ' ')
			i++;
		return i < n && isdigit((unsigned char)s[i]);
	}
	if (i + 9 > n || strncasecmp(s + i, "copyright", 9))
		return 0;
	i += 9;
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ':'))
		i++;
	if (i >= n)
		return 0;
	if ((unsigned char)s[i] == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0xA9)
		return 1;
	return (i + 3 <= n && !strncasecmp(s + i, "(c)", 3)) || isdigit((unsigned char)s[i]) || s[i] == '[' ||
	       s[i] == '<' || s[i] == '{';
}

/* A token that can be a list marker: 1-3 digits, one letter, or a small
 * roman numeral. */
static int marker_like(const char *w, size_t n)
{
	if (n == 1)
		return 1;
	int digits = 1, roman = 1;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)w[i]))
			digits = 0;
		if (w[i] != 'i' && w[i] != 'v' && w[i] != 'x')
			roman = 0;
	}
	return (digits && n <= 3) || (roman && n <= 4);
}

static void tokenize(const char *s, size_t n, struct toks *t)
{
	size_t i = 0;
	int line_begin = 1;  /* only space/markup since the last newline */
	int prev = '\n';     /* last non-space byte before the current position */
	char w[TOK_MAX];

	while (i < n && !t->oom) {
		if (line_begin && (i == 0 || s[i - 1] == '\n')) {
			const char *nl = memchr(s + i, '\n', n - i);
			size_t ll = nl ? (size_t)(nl - (s + i)) : n - i;
			if (copyright_line(s + i, ll)) {
				i += ll + (nl ? 1 : 0);
				continue;
			}
		}
		unsigned char c = (unsigned char)s[i];
		if (c == '\n') {
			line_begin = 1;
			prev = '\n';
			i++;
			continue;
		}
		/* Markdown link target "](url)": dropped, the link text stays */
		if (c == ']' && i + 1 < n && s[i + 1] == '(') {
			size_t j = i + 2;
			while (j < n && j < i + 2048 && s[j] != ')' && s[j] != '\n')
				j++;
			if (j < n && s[j] == ')') {
				i = j + 1;
				prev = ')';
				continue;
			}
		}
		size_t cl = 1;
		uint32_t cp = c >= 0x80 ? utf8((const unsigned char *)s + i, n - i, &cl) : c;
		int word = is_wordbyte(c) || (c >= 0x80 && !cp_is_sep(cp));
		if (!word) {
			if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' || cp == 0xA0) {
				/* space: prev unchanged */
			} else {
				prev = c >= 0x80 ? ' ' : c;
				if (!is_markup(c) && !(c >= 0x80 && (cp == 0x2022 || cp == 0xB7 || cp == 0x25CF ||
									cp == 0x25AA || cp == 0x25E6)))
					line_begin = 0;
			}
			i += cl;
			continue;
		}
		/* a word: letters/digits/UTF-8 letters; '.' between digits; a '-'
		 * between word characters (also across a line break) joins */
		int start_line = line_begin;
		int before = i > 0 ? (unsigned char)s[i - 1] : '\n';
		int prev_sig = prev;
		size_t wl = 0;
		while (i < n) {
			c = (unsigned char)s[i];
			if (is_wordbyte(c)) {
				if (wl < TOK_MAX)
					w[wl++] = (char)tolower(c);
				i++;
				continue;
			}
			if (c >= 0x80) {
				cp = utf8((const unsigned char *)s + i, n - i, &cl);
				if (cp_is_sep(cp))
					break;
				for (size_t k = 0; k < cl; k++)
					if (wl < TOK_MAX)
						w[wl++] = s[i + k];
				i += cl;
				continue;
			}
			if (c == '.' && wl && isdigit((unsigned char)w[wl - 1]) && i + 1 < n &&
			    isdigit((unsigned char)s[i + 1])) {
				if (wl < TOK_MAX)
					w[wl++] = '.';
				i++;
				continue;
			}
			if (c == '-') {
				size_t j = i + 1;
				while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r'))
					j++;
				if (j < n && s[j] == '\n') {
					j++;
					while (j < n && (s[j] == ' ' || s[j] == '\t'))
						j++;
				} else {
					j = i + 1; /* no line break: must be directly followed */
				}
				if (j < n && (is_wordbyte((unsigned char)s[j]) || (unsigned char)s[j] >= 0x80)) {
					i = j;
					continue;
				}
			}
			break;
		}
		line_begin = 0;
		prev = 'a';
		/* list markers: "(a)", "1.", "iv)", "a." at the start of a line or
		 * after a sentence end */
		if (marker_like(w, wl)) {
			size_t j = i;
			while (j < n && (s[j] == '*' || s[j] == '\\' || s[j] == '_'))
				j++;
			int after = j < n ? (unsigned char)s[j] : '\n';
			int after2 = j + 1 < n ? (unsigned char)s[j + 1] : '\n';
			int closes = (after == '.' || after == ')') &&
				     (after2 == ' ' || after2 == '\t' || after2 == '\n' || after2 == '\r' ||
				      after2 == '*');
			if (before == '(' && after == ')')
				continue;
			if (closes && (start_line || prev_sig == '.' || prev_sig == ':' || prev_sig == ';' ||
				       prev_sig == ')' || prev_sig == '\n'))
				continue;
		}
		emit(t, w, wl);
	}
}

/* ---- bigram sets ------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Token hashes -> sorted unique bigram hashes, in place. Returns count. */
static size_t bigrams(uint64_t *h, size_t n)
{
	if (n < 2)
		return 0;
	for (size_t i = 0; i + 1 < n; i++) {
		uint64_t a = h[i], b = h[i + 1];
		h[i] = (a * 0x9E3779B97F4A7C15ULL) ^ ((b << 29) | (b >> 35)) ^ (b * 0xC2B2AE3D27D4EB4FULL);
	}
	n--;
	qsort(h, n, sizeof *h, cmp_u64);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (u == 0 || h[u - 1] != h[i])
			h[u++] = h[i];
	return u;
}

static size_t intersect(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
	size_t i = 0, j = 0, k = 0;
	while (i < na && j < nb) {
		if (a[i] < b[j])
			i++;
		else if (a[i] > b[j])
			j++;
		else {
			k++;
			i++;
			j++;
		}
	}
	return k;
}

/* ---- the corpus --------------------------------------------------------- */

/*
 * Optional text that a license's own distribution appends to it, as the
 * SPDX templates mark with <<beginOptional>>: it is neither required for a
 * match nor counted as text added to the license. Apache-2.0's APPENDIX
 * ("How to apply the Apache License to your work", with its boilerplate
 * notice) ships in apache.org's LICENSE-2.0.txt, Debian's copy and most
 * projects' LICENSE files. Its "Copyright [yyyy] [name of copyright owner]"
 * line, filled in or not, is a copyright line and dropped by normalization.
 * GPL-2.0, GPL-3.0 and LGPL-2.1: the FSF's "How to Apply These Terms"
 * section, copied from Debian's /usr/share/common-licenses files.
 */
static const struct { const char *id, *text; } optional_text[] = {
	{ "Apache-2.0",
	  "APPENDIX: How to apply the Apache License to your work.\n"
	  "To apply the Apache License to your work, attach the following boilerplate notice, with the "
	  "fields enclosed by brackets \"[]\" replaced with your own identifying information. (Don't "
	  "include the brackets!)  The text should be enclosed in the appropriate comment syntax for the "
	  "file format. We also recommend that a file or class name and description of purpose be included "
	  "on the same \"printed page\" as the copyright notice for easier identification within "
	  "third-party archives.\n"
	  "Copyright [yyyy] [name of copyright owner]\n"
	  "Licensed under the Apache License, Version 2.0 (the \"License\"); you may not use this file "
	  "except in compliance with the License. You may obtain a copy of the License at\n"
	  "http://www.apache.org/licenses/LICENSE-2.0\n"
	  "Unless required by applicable law or agreed to in writing, software distributed under the "
	  "License is distributed on an \"AS IS\" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, "
	  "either express or implied. See the License for the specific language governing permissions and "
	  "limitations under the License.\n" },
	/* the FSF's "How to Apply These Terms" sections, as Debian's
	 * /usr/share/common-licenses copies (and most COPYING files) carry
	 * them after END OF TERMS AND CONDITIONS */
	{ "GPL-2.0-only",
	  "How to Apply These Terms to Your New Programs\n"
	  "If you develop a new program, and you want it to be of the greatest possible use to the "
	  "public, the best way to achieve this is to make it free software which everyone can "
	  "redistribute and change under these terms.\n"
	  "To do so, attach the following notices to the program. It is safest to attach them to the "
	  "start of each source file to most effectively convey the exclusion of warranty; and each "
	  "file should have at least the \"copyright\" line and a pointer to where the full notice is "
	  "found.\n"
	  "<one line to give the program's name and a brief idea of what it does.> Copyright (C) <year> "
	  "<name of author>\n"
	  "This program is free software; you can redistribute it and/or modify it under the terms of "
	  "the GNU General Public License as published by the Free Software Foundation; either version "
	  "2 of the License, or (at your option) any later version.\n"
	  "This program is distributed in the hope that it will be useful, but WITHOUT ANY WARRANTY; "
	  "without even the implied warranty of MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE. "
	  "See the GNU General Public License for more details.\n"
	  "You should have received a copy of the GNU General Public License along with this program; "
	  "if not, write to the Free Software Foundation, Inc., 51 Franklin Street, Fifth Floor, "
	  "Boston, MA 02110-1301 USA.\n"
	  "Also add information on how to contact you by electronic and paper mail.\n"
	  "If the program is interactive, make it output a short notice like this when it starts in an "
	  "interactive mode:\n"
	  "Gnomovision version 69, Copyright (C) year name of author Gnomovision comes with ABSOLUTELY "
	  "NO WARRANTY; for details type `show w'. This is free software, and you are welcome to "
	  "redistribute it under certain conditions; type `show c' for details.\n"
	  "The hypothetical commands `show w' and `show c' should show the appropriate parts of the "
	  "General Public License. Of course, the commands you use may be called something other than "
	  "`show w' and `show c'; they could even be mouse-clicks or menu items--whatever suits your "
	  "program.\n"
	  "You should also get your employer (if you work as a programmer) or your school, if any, to "
	  "sign a \"copyright disclaimer\" for the program, if necessary. Here is a sample; alter the "
	  "names:\n"
	  "Yoyodyne, Inc., hereby disclaims all copyright interest in the program `Gnomovision' (which "
	  "makes passes at compilers) written by James Hacker.\n"
	  "<signature of Ty Coon>, 1 April 1989 Ty Coon, President of Vice\n"
	  "This General Public License does not permit incorporating your program into proprietary "
	  "programs. If your program is a subroutine library, you may consider it more useful to permit "
	  "linking proprietary applications with the library. If this is what you want to do, use the "
	  "GNU Lesser General Public License instead of this License.\n" },
	{ "GPL-3.0-only",
	  "How to Apply These Terms to Your New Programs\n"
	  "If you develop a new program, and you want it to be of the greatest possible use to the "
	  "public, the best way to achieve this is to make it free software which everyone can "
	  "redistribute and change under these terms.\n"
	  "To do so, attach the following notices to the program. It is safest to attach them to the "
	  "start of each source file to most effectively state the exclusion of warranty; and each file "
	  "should have at least the \"copyright\" line and a pointer to where the full notice is found.\n"
	  "<one line to give the program's name and a brief idea of what it does.> Copyright (C) <year> "
	  "<name of author>\n"
	  "This program is free software: you can redistribute it and/or modify it under the terms of "
	  "the GNU General Public License as published by the Free Software Foundation, either version "
	  "3 of the License, or (at your option) any later version.\n"
	  "This program is distributed in the hope that it will be useful, but WITHOUT ANY WARRANTY; "
	  "without even the implied warranty of MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE. "
	  "See the GNU General Public License for more details.\n"
	  "You should have received a copy of the GNU General Public License along with this program. "
	  "If not, see <https://www.gnu.org/licenses/>.\n"
	  "Also add information on how to contact you by electronic and paper mail.\n"
	  "If the program does terminal interaction, make it output a short notice like this when it "
	  "starts in an interactive mode:\n"
	  "<program> Copyright (C) <year> <name of author> This program comes with ABSOLUTELY NO "
	  "WARRANTY; for details type `show w'. This is free software, and you are welcome to "
	  "redistribute it under certain conditions; type `show c' for details.\n"
	  "The hypothetical commands `show w' and `show c' should show the appropriate parts of the "
	  "General Public License. Of course, your program's commands might be different; for a GUI "
	  "interface, you would use an \"about box\".\n"
	  "You should also get your employer (if you work as a programmer) or school, if any, to sign a "
	  "\"copyright disclaimer\" for the program, if necessary. For more information on this, and "
	  "how to apply and follow the GNU GPL, see <https://www.gnu.org/licenses/>.\n"
	  "The GNU General Public License does not permit incorporating your program into proprietary "
	  "programs. If your program is a subroutine library, you may consider it more useful to permit "
	  "linking proprietary applications with the library. If this is what you want to do, use the "
	  "GNU Lesser General Public License instead of this License. But first, please read "
	  "<https://www.gnu.org/licenses/why-not-lgpl.html>.\n" },
	{ "LGPL-2.1-only",
	  "How to Apply These Terms to Your New Libraries\n"
	  "If you develop a new library, and you want it to be of the greatest possible use to the "
	  "public, we recommend making it free software that everyone can redistribute and change. You "
	  "can do so by permitting redistribution under these terms (or, alternatively, under the terms "
	  "of the ordinary General Public License).\n"
	  "To apply these terms, attach the following notices to the library. It is safest to attach "
	  "them to the start of each source file to most effectively convey the exclusion of warranty; "
	  "and each file should have at least the \"copyright\" line and a pointer to where the full "
	  "notice is found.\n"
	  "<one line to give the library's name and a brief idea of what it does.> Copyright (C) <year> "
	  "<name of author>\n"
	  "This library is free software; you can redistribute it and/or modify it under the terms of "
	  "the GNU Lesser General Public License as published by the Free Software Foundation; either "
	  "version 2.1 of the License, or (at your option) any later version.\n"
	  "This library is distributed in the hope that it will be useful, but WITHOUT ANY WARRANTY; "
	  "without even the implied warranty of MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE. "
	  "See the GNU Lesser General Public License for more details.\n"
	  "You should have received a copy of the GNU Lesser General Public License along with this "
	  "library; if not, write to the Free Software Foundation, Inc., 51 Franklin Street, Fifth "
	  "Floor, Boston, MA 02110-1301 USA\n"
	  "Also add information on how to contact you by electronic and paper mail.\n"
	  "You should also get your employer (if you work as a programmer) or your school, if any, to "
	  "sign a \"copyright disclaimer\" for the library, if necessary. Here is a sample; alter the "
	  "names:\n"
	  "Yoyodyne, Inc., hereby disclaims all copyright interest in the library `Frob' (a library for "
	  "tweaking knobs) written by James Random Hacker.\n"
	  "<signature of Ty Coon>, 1 April 1990 Ty Coon, President of Vice\n"
	  "That's all there is to it!\n" },
};

struct entry {
	uint64_t *bg;  /* the license's bigrams */
	size_t n;
	uint64_t *opt; /* bigrams only its optional text has (NULL: none) */
	size_t nopt;
};
static struct entry *corpus;
static int corpus_err;
static pthread_once_t corpus_once = PTHREAD_ONCE_INIT;

/* Sorted unique bigrams of text[0..n); NULL on out of memory. */
static uint64_t *corpus_bigrams(const char *text, size_t n, size_t *count)
{
	struct toks t = { 0 };
	t.h = malloc(1024 * sizeof *t.h);
	t.cap = t.h ? 1024 : 0;
	if (!t.h)
		return NULL;
	tokenize(text, n, &t);
	if (t.oom) {
		free(t.h);
		return NULL;
	}
	*count = bigrams(t.h, t.n);
	return t.h;
}

static void corpus_init(void)
{
	corpus = calloc(licdetect_corpus_n ? licdetect_corpus_n : 1, sizeof *corpus);
	if (!corpus) {
		corpus_err = MD_ENOMEM;
		return;
	}
	for (size_t i = 0; i < licdetect_corpus_n; i++) {
		const char *lt = licdetect_corpus[i].text;
		if (!(corpus[i].bg = corpus_bigrams(lt, strlen(lt), &corpus[i].n))) {
			corpus_err = MD_ENOMEM;
			return;
		}
		for (size_t o = 0; o < sizeof optional_text / sizeof optional_text[0]; o++) {
			if (strcmp(optional_text[o].id, licdetect_corpus[i].id))
				continue;
			/* the license followed by its optional text, less the license's
			 * own bigrams: also the bigrams that join the two */
			size_t ll = strlen(lt), lo = strlen(optional_text[o].text), nf;
			char *full = malloc(ll + lo + 2);
			uint64_t *f = NULL;
			if (full) {
				memcpy(full, lt, ll);
				full[ll] = '\n';
				memcpy(full + ll + 1, optional_text[o].text, lo + 1);
				f = corpus_bigrams(full, ll + lo + 1, &nf);
				free(full);
			}
			if (!f) {
				corpus_err = MD_ENOMEM;
				return;
			}
			size_t u = 0, j = 0;
			for (size_t k = 0; k < nf; k++) {
				while (j < corpus[i].n && corpus[i].bg[j] < f[k])
					j++;
				if (j == corpus[i].n || corpus[i].bg[j] != f[k])
					f[u++] = f[k];
			}
			corpus[i].opt = f;
			corpus[i].nopt = u;
		}
	}
}

/* Score of a text (na bigrams a) against corpus entry e: Dice and coverage,
 * with the text's bigrams that are e's optional text left out of both the
 * text and the "extra" count. */
static double score_one(const uint64_t *a, size_t na, const struct entry *e, size_t *k, size_t *extra,
			double *coverage)
{
	*k = intersect(a, na, e->bg, e->n);
	size_t eff = na - (e->opt ? intersect(a, na, e->opt, e->nopt) : 0);
	*extra = eff - *k;
	*coverage = e->n ? (double)*k / (double)e->n : 0;
	return (eff + e->n) ? 2.0 * (double)*k / (double)(eff + e->n) : 0;
}

static int corpus_get(void)
{
	pthread_once(&corpus_once, corpus_init);
	return corpus_err ? md_fail(corpus_err, "license corpus: out of memory") : 0;
}

static int text_bigrams(const char *text, size_t len, uint64_t **out, size_t *n, size_t *words)
{
	if (len > LICDETECT_MAX_TEXT)
		len = LICDETECT_MAX_TEXT;
	struct toks t = { 0 };
	t.h = malloc(1024 * sizeof *t.h);
	t.cap = 1024;
	if (!t.h)
		return md_fail(MD_ENOMEM, "license text: out of memory");
	tokenize(text, len, &t);
	if (t.oom) {
		free(t.h);
		return md_fail(MD_ENOMEM, "license text: out of memory");
	}
	*words = t.n;
	*n = bigrams(t.h, t.n);
	*out = t.h;
	return 0;
}

int licdetect_has(const char *id)
{
	for (size_t i = 0; id && i < licdetect_corpus_n; i++)
		if (!strcmp(licdetect_corpus[i].id, id))
			return 1;
	return 0;
}

int licdetect_text(const char *text, size_t len, struct licdetect_result *res)
{
	if (!text || !res)
		return md_fail(MD_EINVAL, "licdetect_text: NULL argument");
	memset(res, 0, sizeof *res);
	int rc = corpus_get();
	if (rc)
		return rc;
	uint64_t *a;
	size_t na;
	rc = text_bigrams(text, len, &a, &na, &res->words);
	if (rc)
		return rc;
	double best = -1, second = -1, best_cov = 0;
	size_t bi = 0, si = 0, best_extra = 0;
	for (size_t i = 0; i < licdetect_corpus_n && na; i++) {
		size_t k, extra;
		double cov, d = score_one(a, na, &corpus[i], &k, &extra, &cov);
		if (d > best) {
			second = best;
			si = bi;
			best = d;
			bi = i;
			best_cov = cov;
			best_extra = extra;
		} else if (d > second) {
			second = d;
			si = i;
		}
	}
	free(a);
	if (best >= 0) {
		snprintf(res->id, sizeof res->id, "%s", licdetect_corpus[bi].id);
		res->score = best;
		res->coverage = best_cov;
		res->matched = best >= LICDETECT_MATCH && best_cov >= LICDETECT_COVERAGE;
		res->extra = best_extra;
		res->license_bigrams = corpus[bi].n;
	}
	if (second >= 0) {
		snprintf(res->runner_up, sizeof res->runner_up, "%s", licdetect_corpus[si].id);
		res->runner_up_score = second;
	}
	return 0;
}

int licdetect_score(const char *text, size_t len, const char *id, double *score, double *coverage)
{
	int rc = corpus_get();
	if (rc)
		return rc;
	size_t idx = licdetect_corpus_n;
	for (size_t i = 0; i < licdetect_corpus_n; i++)
		if (!strcmp(licdetect_corpus[i].id, id))
			idx = i;
	if (idx == licdetect_corpus_n)
		return md_fail(MD_ENOENT, "%s: not in the license corpus", id);
	uint64_t *a;
	size_t na, words;
	rc = text_bigrams(text, len, &a, &na, &words);
	if (rc)
		return rc;
	size_t k, extra;
	double cov;
	*score = score_one(a, na, &corpus[idx], &k, &extra, &cov);
	if (coverage)
		*coverage = cov;
	free(a);
	return 0;
}

int licdetect_normalize(const char *text, size_t len, char **out)
{
	if (len > LICDETECT_MAX_TEXT)
		len = LICDETECT_MAX_TEXT;
	struct toks t = { 0 };
	t.tcap = (size_t)-1; /* collect text */
	tokenize(text, len, &t);
	if (t.oom) {
		free(t.text);
		return md_fail(MD_ENOMEM, "license text: out of memory");
	}
	*out = t.text ? t.text : strdup("");
	return *out ? 0 : md_fail(MD_ENOMEM, "license text: out of memory");
}

/* converters/zipread.c — strict reader for stored-only zip archives; see zipread.h. */
#include "converters/zipread.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u
#define SIG_DESC 0x08074b50u

#define EOCD_LEN 22u
#define LOC64_LEN 20u
#define EOCD64_LEN 56u
#define CEN_LEN 46u
#define LOC_LEN 30u
#define MAX_COMMENT 65535u

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

uint32_t zip_crc32(uint32_t crc, const void *buf, size_t n)
{
	static uint32_t table[8][256];
	static _Atomic int ready;
	if (!ready) {
		/* Idempotent: racing threads compute the same values. */
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[0][i] = c;
		}
		for (uint32_t i = 0; i < 256; i++)
			for (int t = 1; t < 8; t++)
				table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
		ready = 1;
	}
	const uint8_t *p = buf;
	crc = ~crc;
	while (n >= 8) {
		uint32_t a = crc ^ rd32(p), b = rd32(p + 4);
		crc = table[7][a & 0xff] ^ table[6][(a >> 8) & 0xff] ^ table[5][(a >> 16) & 0xff] ^
		      table[4][a >> 24] ^ table[3][b & 0xff] ^ table[2][(b >> 8) & 0xff] ^
		      table[1][(b >> 16) & 0xff] ^ table[0][b >> 24];
		p += 8;
		n -= 8;
	}
	while (n--)
		crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* A compression method's usual name, for messages, or NULL. */
static const char *method_name(unsigned m)
{
	switch (m) {
	case 1: return "shrink";
	case 6: return "implode";
	case 8: return "deflate";
	case 9: return "deflate64";
	case 12: return "bzip2";
	case 14: return "lzma";
	case 93: return "zstd";
	case 95: return "xz";
	default: return NULL;
	}
}

static int pread_exact(int fd, void *buf, size_t n, uint64_t off, const char *what)
{
	ssize_t r = util_pread_full(fd, buf, n, (off_t)off);
	if (r < 0)
		return md_fail(MD_EIO, "%s: read error", what);
	if ((size_t)r != n)
		return md_fail(MD_ECORRUPT, "%s: truncated", what);
	return 0;
}

void zip_close(struct zip_archive *za)
{
	for (size_t i = 0; i < za->n; i++)
		free(za->e[i].name);
	free(za->e);
	memset(za, 0, sizeof *za);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct zip_entry *)a)->name, ((const struct zip_entry *)b)->name);
}

static int by_off(const void *a, const void *b)
{
	uint64_t x = ((const struct zip_entry *)a)->hdr_off, y = ((const struct zip_entry *)b)->hdr_off;
	return x < y ? -1 : x > y;
}

/* Locate the EOCD (and ZIP64 record) and fill cd_off, cd_size, *count. The
 * central directory must end exactly where the end records begin. */
static int find_end(int fd, uint64_t size, struct zip_archive *za, uint64_t *count)
{
	if (size < EOCD_LEN)
		return md_fail(MD_ECORRUPT, "zip: truncated (%llu bytes)", (unsigned long long)size);
	size_t tail = size < EOCD_LEN + MAX_COMMENT ? (size_t)size : EOCD_LEN + MAX_COMMENT;
	uint8_t *buf = malloc(tail);
	if (!buf)
		return MD_ENOMEM;
	uint64_t base = size - tail;
	int rc = pread_exact(fd, buf, tail, base, "zip end record");
	if (rc) {
		free(buf);
		return rc;
	}
	/* The last EOCD whose comment runs exactly to end of file. */
	size_t pos = (size_t)-1;
	for (size_t i = tail - EOCD_LEN + 1; i-- > 0;) {
		if (rd32(buf + i) == SIG_EOCD && i + EOCD_LEN + rd16(buf + i + 20) == tail) {
			pos = i;
			break;
		}
	}
	if (pos == (size_t)-1) {
		free(buf);
		return md_fail(MD_ECORRUPT, "zip: no end of central directory record (truncated?)");
	}
	const uint8_t *e = buf + pos;
	uint64_t eocd_off = base + pos;
	uint32_t disk = rd16(e + 4), cdisk = rd16(e + 6);
	uint64_t n_here = rd16(e + 8), n_all = rd16(e + 10);
	uint64_t cd_size = rd32(e + 12), cd_off = rd32(e + 16);
	uint64_t records_off = eocd_off;
	int have64 = 0;
	uint8_t loc[LOC64_LEN];
	if (eocd_off >= LOC64_LEN) {
		if ((rc = pread_exact(fd, loc, LOC64_LEN, eocd_off - LOC64_LEN, "zip64 locator"))) {
			free(buf);
			return rc;
		}
		have64 = rd32(loc) == SIG_LOC64;
	}
	free(buf);
	if (have64) {
		uint64_t loc_off = eocd_off - LOC64_LEN;
		uint64_t e64_off = rd64(loc + 8);
		if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1)
			return md_fail(MD_EREFUSED, "refused: multi-disk zip archive");
		if (e64_off > loc_off || loc_off - e64_off < EOCD64_LEN)
			return md_fail(MD_ECORRUPT, "zip: ZIP64 end record offset %llu out of range",
				       (unsigned long long)e64_off);
		uint8_t r[EOCD64_LEN];
		if ((rc = pread_exact(fd, r, EOCD64_LEN, e64_off, "zip64 end record")))
			return rc;
		if (rd32(r) != SIG_EOCD64)
			return md_fail(MD_ECORRUPT, "zip: bad ZIP64 end record signature");
		uint64_t rlen = rd64(r + 4);
		if (rlen < EOCD64_LEN - 12 || rlen != loc_off - e64_off - 12)
			return md_fail(MD_ECORRUPT, "zip: ZIP64 end record length %llu does not fit",
				       (unsigned long long)rlen);
		uint32_t d64 = rd32(r + 16), cd64 = rd32(r + 20);
		uint64_t h64 = rd64(r + 24), a64 = rd64(r + 32), s64 = rd64(r + 40), o64 = rd64(r + 48);
		/* The 32-bit fields are either the ZIP64 sentinel or agree. */
		if ((disk != 0xffff && disk != d64) || (cdisk != 0xffff && cdisk != cd64) ||
		    (n_here != 0xffff && n_here != h64) || (n_all != 0xffff && n_all != a64) ||
		    (cd_size != 0xffffffff && cd_size != s64) || (cd_off != 0xffffffff && cd_off != o64))
			return md_fail(MD_ECORRUPT, "zip: ZIP64 end record disagrees with the end record");
		disk = d64;
		cdisk = cd64;
		n_here = h64;
		n_all = a64;
		cd_size = s64;
		cd_off = o64;
		records_off = e64_off;
		za->zip64 = 1;
	}
	if (disk != 0 || cdisk != 0 || n_here != n_all)
		return md_fail(MD_EREFUSED, "refused: multi-disk zip archive");
	if (n_all > ZIP_MAX_ENTRIES)
		return md_fail(MD_ETOOBIG, "zip: %llu entries (at most %u)", (unsigned long long)n_all,
			       ZIP_MAX_ENTRIES);
	if (cd_size > ZIP_MAX_CD)
		return md_fail(MD_ETOOBIG, "zip: central directory of %llu bytes (at most %u)",
			       (unsigned long long)cd_size, ZIP_MAX_CD);
	if (cd_off > records_off || records_off - cd_off != cd_size)
		return md_fail(MD_ECORRUPT, "zip: central directory [%llu, +%llu) does not end at the end record (%llu)",
			       (unsigned long long)cd_off, (unsigned long long)cd_size,
			       (unsigned long long)records_off);
	if (n_all * CEN_LEN > cd_size)
		return md_fail(MD_ECORRUPT, "zip: %llu entries do not fit a %llu-byte central directory",
			       (unsigned long long)n_all, (unsigned long long)cd_size);
	za->cd_off = cd_off;
	za->cd_size = cd_size;
	*count = n_all;
	return 0;
}

/* Parse the ZIP64 extended-information extra field of a central entry. */
static int cen_zip64(const uint8_t *x, size_t xlen, const char *name, uint64_t *usize,
		     uint64_t *csize, uint64_t *lho, uint32_t *disk)
{
	int need_u = *usize == 0xffffffff, need_c = *csize == 0xffffffff;
	int need_o = *lho == 0xffffffff, need_d = *disk == 0xffff;
	size_t i = 0;
	int seen = 0;
	while (i < xlen) {
		if (xlen - i < 4)
			return md_fail(MD_ECORRUPT, "%s: truncated extra field", name);
		uint16_t id = rd16(x + i), len = rd16(x + i + 2);
		i += 4;
		if (len > xlen - i)
			return md_fail(MD_ECORRUPT, "%s: extra field 0x%04x overruns", name, id);
		if (id == 0x0001) {
			if (seen++)
				return md_fail(MD_ECORRUPT, "%s: two ZIP64 extra fields", name);
			const uint8_t *p = x + i;
			size_t want = 8u * (need_u + need_c + need_o) + 4u * need_d;
			if (len < want)
				return md_fail(MD_ECORRUPT, "%s: short ZIP64 extra field", name);
			if (need_u) { *usize = rd64(p); p += 8; }
			if (need_c) { *csize = rd64(p); p += 8; }
			if (need_o) { *lho = rd64(p); p += 8; }
			if (need_d) *disk = rd32(p);
		}
		i += len;
	}
	if ((need_u || need_c || need_o || need_d) && !seen)
		return md_fail(MD_ECORRUPT, "%s: ZIP64 sizes without a ZIP64 extra field", name);
	return 0;
}

static int parse_central(const uint8_t *cd, size_t cd_size, uint64_t count, struct zip_archive *za)
{
	size_t p = 0;
	for (uint64_t k = 0; k < count; k++) {
		if (cd_size - p < CEN_LEN || rd32(cd + p) != SIG_CENTRAL)
			return md_fail(MD_ECORRUPT, "zip: central directory entry %llu malformed",
				       (unsigned long long)k);
		const uint8_t *c = cd + p;
		uint16_t flags = rd16(c + 8), method = rd16(c + 10);
		uint32_t crc = rd32(c + 16);
		uint64_t csize = rd32(c + 20), usize = rd32(c + 24);
		size_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
		uint32_t disk = rd16(c + 34);
		uint64_t lho = rd32(c + 42);
		if (cd_size - p - CEN_LEN < nlen + xlen + clen)
			return md_fail(MD_ECORRUPT, "zip: central directory entry %llu overruns",
				       (unsigned long long)k);
		if (nlen == 0 || nlen > ZIP_MAX_NAME)
			return md_fail(MD_ECORRUPT, "zip: entry %llu: name of %zu bytes", (unsigned long long)k, nlen);
		char *name = malloc(nlen + 1);
		if (!name)
			return MD_ENOMEM;
		memcpy(name, c + CEN_LEN, nlen);
		name[nlen] = 0;
		struct zip_entry *ze = &za->e[za->n];
		ze->name = name;
		za->n++;
		if (memchr(name, 0, nlen))
			return md_fail(MD_EREFUSED, "zip: entry %llu: NUL in name", (unsigned long long)k);
		int rc = util_check_relpath(name);
		if (rc)
			return md_fail(rc, "zip: entry name refused: %s", name);
		/* torch.save writes neither: such an archive is not one we can
		 * check, so it is refused (never stored unchecked) */
		if (flags & 0x0001 || flags & 0x0040 || flags & 0x2000)
			return md_fail(MD_EREFUSED, "refused: zip entry %s is encrypted; torch.save "
				       "stores entries unencrypted", name);
		if (method != 0 && method_name(method))
			return md_fail(MD_EREFUSED, "refused: zip entry %s is compressed (%s); "
				       "torch.save stores entries uncompressed", name,
				       method_name(method));
		if (method != 0)
			return md_fail(MD_EREFUSED, "refused: zip entry %s is compressed (method %u); "
				       "torch.save stores entries uncompressed", name, method);
		if (flags & ~0x0808u)
			return md_fail(MD_EREFUSED, "refused: zip entry %s has flags 0x%04x torch.save "
				       "does not write", name, flags);
		if ((rc = cen_zip64(c + CEN_LEN + nlen, xlen, name, &usize, &csize, &lho, &disk)))
			return rc;
		if (disk != 0)
			return md_fail(MD_EREFUSED, "refused: zip entry %s is on disk %u (multi-disk "
				       "archive)", name, disk);
		if (csize != usize)
			return md_fail(MD_ECORRUPT, "%s: stored entry with %llu compressed and %llu plain bytes",
				       name, (unsigned long long)csize, (unsigned long long)usize);
		ze->hdr_off = lho;
		ze->size = usize;
		ze->crc = crc;
		ze->data_off = flags; /* stash the flags until the local header is read */
		p += CEN_LEN + nlen + xlen + clen;
	}
	if (p != cd_size)
		return md_fail(MD_ECORRUPT, "zip: %zu stray bytes in the central directory", cd_size - p);
	return 0;
}

/* Read the local header (and data descriptor) of ze; fills data_off, end. */
static int read_local(int fd, struct zip_archive *za, struct zip_entry *ze)
{
	uint16_t cflags = (uint16_t)ze->data_off;
	size_t nlen = strlen(ze->name);
	uint8_t h[LOC_LEN + ZIP_MAX_NAME];
	if (ze->hdr_off > za->cd_off || za->cd_off - ze->hdr_off < LOC_LEN + nlen)
		return md_fail(MD_ECORRUPT, "%s: local header at %llu outside the entries area", ze->name,
			       (unsigned long long)ze->hdr_off);
	int rc = pread_exact(fd, h, LOC_LEN + nlen, ze->hdr_off, ze->name);
	if (rc)
		return rc;
	if (rd32(h) != SIG_LOCAL)
		return md_fail(MD_ECORRUPT, "%s: bad local header signature", ze->name);
	uint16_t flags = rd16(h + 6), method = rd16(h + 8);
	uint32_t crc = rd32(h + 14);
	uint32_t csize = rd32(h + 18), usize = rd32(h + 22);
	size_t lnlen = rd16(h + 26), xlen = rd16(h + 28);
	if (flags != cflags || method != 0)
		return md_fail(MD_ECORRUPT, "%s: local header disagrees with the central directory", ze->name);
	if (lnlen != nlen || memcmp(h + LOC_LEN, ze->name, nlen) != 0)
		return md_fail(MD_ECORRUPT, "%s: local header names another file", ze->name);
	if (!(flags & 0x0008)) {
		if (crc != ze->crc ||
		    (csize != 0xffffffff && csize != ze->size) || (usize != 0xffffffff && usize != ze->size))
			return md_fail(MD_ECORRUPT, "%s: local header sizes or CRC disagree with the central directory",
				       ze->name);
	}
	uint64_t start = ze->hdr_off + LOC_LEN + nlen + xlen;
	if (start > za->cd_off || za->cd_off - start < ze->size)
		return md_fail(MD_ECORRUPT, "%s: data [%llu, +%llu) runs past the entries area", ze->name,
			       (unsigned long long)start, (unsigned long long)ze->size);
	ze->data_off = start;
	ze->end = start + ze->size;
	if (flags & 0x0008) {
		uint8_t d[24];
		size_t avail = za->cd_off - ze->end < 24 ? (size_t)(za->cd_off - ze->end) : 24;
		if ((rc = pread_exact(fd, d, avail, ze->end, ze->name)))
			return rc;
		size_t o = avail >= 4 && rd32(d) == SIG_DESC ? 4 : 0;
		size_t len = 0;
		if (avail >= o + 12 && rd32(d + o) == ze->crc && rd32(d + o + 4) == ze->size &&
		    rd32(d + o + 8) == ze->size && ze->size < 0xffffffffu)
			len = o + 12;
		else if (avail >= o + 20 && rd32(d + o) == ze->crc && rd64(d + o + 4) == ze->size &&
			 rd64(d + o + 12) == ze->size)
			len = o + 20;
		if (!len)
			return md_fail(MD_ECORRUPT, "%s: data descriptor missing or disagrees with the central directory",
				       ze->name);
		ze->end += len;
	}
	return 0;
}

int zip_open(int fd, uint64_t size, struct zip_archive *za)
{
	memset(za, 0, sizeof *za);
	uint64_t count = 0;
	int rc = find_end(fd, size, za, &count);
	if (rc)
		return rc;
	uint8_t *cd = malloc(za->cd_size ? (size_t)za->cd_size : 1);
	za->e = calloc(count ? (size_t)count : 1, sizeof *za->e);
	if (!cd || !za->e) {
		free(cd);
		zip_close(za);
		return MD_ENOMEM;
	}
	rc = pread_exact(fd, cd, (size_t)za->cd_size, za->cd_off, "zip central directory");
	if (!rc)
		rc = parse_central(cd, (size_t)za->cd_size, count, za);
	free(cd);
	for (size_t i = 0; !rc && i < za->n; i++)
		rc = read_local(fd, za, &za->e[i]);
	if (!rc && za->n) {
		qsort(za->e, za->n, sizeof *za->e, by_off);
		for (size_t i = 1; i < za->n; i++)
			if (za->e[i].hdr_off < za->e[i - 1].end) {
				rc = md_fail(MD_ECORRUPT, "zip: entries %s and %s overlap", za->e[i - 1].name,
					     za->e[i].name);
				break;
			}
	}
	if (!rc && za->n) {
		qsort(za->e, za->n, sizeof *za->e, by_name);
		for (size_t i = 1; i < za->n; i++)
			if (!strcmp(za->e[i].name, za->e[i - 1].name)) {
				rc = md_fail(MD_ECORRUPT, "zip: duplicate entry %s", za->e[i].name);
				break;
			}
	}
	if (rc)
		zip_close(za);
	return rc;
}

int zip_scan_names(int fd, uint64_t size, int (*fn)(const uint8_t *name, size_t len, void *arg),
		   void *arg)
{
	struct zip_archive za;
	memset(&za, 0, sizeof za);
	uint64_t count = 0;
	int rc = find_end(fd, size, &za, &count);
	if (rc)
		return rc;
	uint8_t *cd = malloc(za.cd_size ? (size_t)za.cd_size : 1);
	if (!cd)
		return MD_ENOMEM;
	rc = pread_exact(fd, cd, (size_t)za.cd_size, za.cd_off, "zip central directory");
	size_t p = 0, cds = (size_t)za.cd_size;
	for (uint64_t k = 0; !rc && k < count; k++) {
		if (cds - p < CEN_LEN || rd32(cd + p) != SIG_CENTRAL) {
			rc = md_fail(MD_ECORRUPT, "zip: central directory entry %llu malformed",
				     (unsigned long long)k);
			break;
		}
		size_t nlen = rd16(cd + p + 28), xlen = rd16(cd + p + 30), clen = rd16(cd + p + 32);
		if (cds - p - CEN_LEN < nlen + xlen + clen) {
			rc = md_fail(MD_ECORRUPT, "zip: central directory entry %llu overruns",
				     (unsigned long long)k);
			break;
		}
		if (fn(cd + p + CEN_LEN, nlen, arg))
			rc = 1;
		p += CEN_LEN + nlen + xlen + clen;
	}
	free(cd);
	return rc;
}

const struct zip_entry *zip_find(const struct zip_archive *za, const char *name)
{
	size_t lo = 0, hi = za->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(za->e[mid].name, name);
		if (!c)
			return &za->e[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int zip_read(int fd, const struct zip_entry *ze, uint64_t cap, uint8_t **out)
{
	*out = NULL;
	if (ze->size > cap)
		return md_fail(MD_ETOOBIG, "%s: %llu bytes (at most %llu)", ze->name,
			       (unsigned long long)ze->size, (unsigned long long)cap);
	uint8_t *b = malloc((size_t)ze->size + 1);
	if (!b)
		return MD_ENOMEM;
	int rc = pread_exact(fd, b, (size_t)ze->size, ze->data_off, ze->name);
	if (rc) {
		free(b);
		return rc;
	}
	if (zip_crc32(0, b, (size_t)ze->size) != ze->crc) {
		free(b);
		return md_fail(MD_ECORRUPT, "%s: CRC mismatch", ze->name);
	}
	b[ze->size] = 0;
	*out = b;
	return 0;
}

/* common/progress.c — see progress.h. */
#include "common/progress.h"
#include "common/util.h"

#include <stdio.h>

/* Bytes per second over the window, or -1 while not measured. */
static double window_rate(struct progress *p, double now, uint64_t done)
{
	/* drop samples older than the window, keeping at least one */
	while (p->n > 1 && now - p->t[p->head] > PROGRESS_WINDOW_S) {
		p->head = (p->head + 1) % PROGRESS_SAMPLES;
		p->n--;
	}
	/* a sample every PROGRESS_STEP_S at most: the ring covers the window */
	int newest = (p->head + p->n - 1 + PROGRESS_SAMPLES) % PROGRESS_SAMPLES;
	if (!p->n || now - p->t[newest] >= PROGRESS_STEP_S) {
		if (p->n == PROGRESS_SAMPLES) { /* full: the oldest goes */
			p->head = (p->head + 1) % PROGRESS_SAMPLES;
			p->n--;
		}
		int slot = (p->head + p->n) % PROGRESS_SAMPLES;
		p->t[slot] = now;
		p->done[slot] = done;
		p->n++;
	}
	int oldest = p->head;
	double span = now - p->t[oldest];
	uint64_t got = done > p->done[oldest] ? done - p->done[oldest] : 0;
	if (span < PROGRESS_MIN_SPAN_S || (got < PROGRESS_MIN_BYTES && span < PROGRESS_SLOW_SPAN_S))
		return -1;
	return (double)got / span;
}

char *progress_line(struct progress *p, double now, uint64_t done, uint64_t total,
		    const char *op, char *out, size_t n)
{
	char d[32], t[32], r[32] = "--", eta[32] = "--";
	double rate = window_rate(p, now, done);
	util_human_size(done, d, sizeof d);
	util_human_size(total, t, sizeof t);
	if (rate >= 0)
		util_human_size((uint64_t)rate, r, sizeof r);
	if (!total) {
		snprintf(out, n, "%-7s %s %s/s", op ? op : "", d, r);
		return out;
	}
	uint64_t left = total - (done < total ? done : total);
	if (rate > 0)
		snprintf(eta, sizeof eta, "%.0fs", (double)left / rate);
	else if (rate == 0 && !left)
		snprintf(eta, sizeof eta, "0s");
	int width = 30, fill = (int)((double)done / (double)total * width);
	if (fill > width)
		fill = width;
	char bar[64];
	for (int i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[width] = 0;
	int pct = done >= total ? 100 : (int)(100.0 * (double)done / (double)total);
	snprintf(out, n, "%-7s [%s] %3d%% %s/%s %s/s ETA %s", op ? op : "", bar, pct, d, t, r, eta);
	return out;
}

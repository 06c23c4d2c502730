/*
 * common/progress.h — the text of modelctl's progress bar (pure, so the
 * unit tests check it).
 *
 * The rate is measured over a moving window of samples (the last
 * PROGRESS_WINDOW_S seconds), from the first frame on, never from the
 * job's start: the seconds a pull spends resolving and listing, and bytes
 * already on disk from an interrupted run, would make up a rate. Until the
 * window spans PROGRESS_MIN_SPAN_S and either PROGRESS_MIN_BYTES or
 * PROGRESS_SLOW_SPAN_S, rate and ETA show as "--".
 */
#ifndef MD_PROGRESS_H
#define MD_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#define PROGRESS_SAMPLES 32
#define PROGRESS_WINDOW_S 10.0
#define PROGRESS_STEP_S 0.5   /* PROGRESS_SAMPLES * this > the window */
#define PROGRESS_MIN_SPAN_S 1.0
#define PROGRESS_SLOW_SPAN_S 5.0
#define PROGRESS_MIN_BYTES (1u << 20)

struct progress {
	double t[PROGRESS_SAMPLES];
	uint64_t done[PROGRESS_SAMPLES];
	int n, head; /* samples held; index of the oldest */
};

/*
 * Add the sample (now, done) and write the bar's line for it into out (n
 * bytes; no "\r"): "pull    [###...] 42% 1.0 MiB/2.0 MiB 3.0 MiB/s ETA 1s",
 * with "--/s ETA --" while the rate is not measured; without total, only
 * "op done rate/s". Returns out.
 */
char *progress_line(struct progress *p, double now, uint64_t done, uint64_t total,
		    const char *op, char *out, size_t n);

#endif

#ifndef RELAYWATCH_MONOCLOCK_H
#define RELAYWATCH_MONOCLOCK_H

/* Seconds on CLOCK_MONOTONIC: for intervals (timeouts, throttles, timings), never for dates. */
double monoclock_now(void);

#endif

/*
 * metrics.h: optional Prometheus endpoint. With metrics_listen set
 * (host:port), pgmux answers GET /metrics over plain HTTP/1.1 with pool,
 * stats, descriptor and saturation figures in the text exposition format.
 */
#ifndef PGMUX_METRICS_H
#define PGMUX_METRICS_H

/* Opens the listener if metrics_listen is set; 0 or -1 (logged). */
int metrics_start(void);
/* Closes the listener and any scrape in progress. */
void metrics_stop(void);

#endif /* PGMUX_METRICS_H */

/** @file metrics.h  Counters and gauges, rendered in Prometheus text format at /metrics. */
#ifndef SIPEDGE_METRICS_H
#define SIPEDGE_METRICS_H
#include <stddef.h>
#include <stdint.h>

enum metric_id {
#define X(id, name, type, help) id,
#include "base/metrics.def"
#undef X
	M__COUNT
};

void metrics_inc(enum metric_id id);
void metrics_dec(enum metric_id id);
void metrics_add(enum metric_id id, int64_t delta);
void metrics_set(enum metric_id id, int64_t value);
int64_t metrics_get(enum metric_id id);
/** Metrics with labels (one line per rtpengine, say) belong to their module, which renders
 *  them in Prometheus text after the fixed ones; up to METRICS_MAX_RENDERERS. A renderer, like
 *  snprintf, writes what fits of size bytes (buf NULL when size is 0) and returns the length the
 *  whole text needs. */
#define METRICS_MAX_RENDERERS 4
typedef size_t (*metrics_renderer)(char *buf, size_t size);
void metrics_add_renderer(metrics_renderer fn);
void metrics_remove_renderer(metrics_renderer fn);
/** Render every metric as Prometheus text into buf, as snprintf does: the length the text
 *  needs, which is size or more when it was cut (then render again into a larger buffer). */
size_t metrics_render(char *buf, size_t size);

#endif

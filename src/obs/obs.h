/* obs: observability — the HTTP endpoint (GET /health, GET /metrics in
 * the Prometheus text format) served from loop 0. Prefix: obs_. */
#ifndef ORBIT_OBS_H
#define ORBIT_OBS_H

#include "net.h"

/* Listen on srv->cfg->http (HOST:PORT) when it is not empty. Returns 0 or
 * -1 with err filled. */
int obs_http_start(struct server *srv, char *err, size_t errcap) MUSTCHECK;
void obs_http_stop(void);

#endif

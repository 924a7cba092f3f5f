/** @file admin_api.c  The console's answers (admin.h): /api/v1/... as JSON, built with jansson.
 *
 * Each resource reads its room through the room's own read-only accessors (flow_each,
 * location_each, dialogs_each, limits_each_ban) and acts only through its public calls
 * (flow_close, location_remove_by_key, limits_unban, the app's reload), so the console can
 * never leave a room in a state the room itself would not.
 */
#include "app/admin.h"
#include "base/log.h"
#include "base/metrics.h"
#include "proxy/dialogs.h"
#include "registrar/location.h"
#include "sip/self.h"
#include "transport/flow.h"
#include "transport/limits.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define API "/api/v1"

static time_t started_at;

static json_t *iso_time(time_t t)
{
	char buf[32];
	struct tm tm;
	if (t <= 0 || !gmtime_r(&t, &tm))
		return json_null();
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

/** A flow id or an address in a path, after the resource's prefix; NULL if it is not there. */
static const char *path_rest(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	return strncmp(path, prefix, n) == 0 && path[n] == '/' && path[n + 1] ? path + n + 1 : NULL;
}

/** Only the query arguments a resource knows: a typo must not silently widen a DELETE. */
static int unknown_args(const struct admin_request *req, const char *const known[], json_t **body)
{
	for (int i = 0; i < req->n_args; i++) {
		bool ok = false;
		for (int k = 0; known[k]; k++)
			ok |= strcmp(req->arg_name[i], known[k]) == 0;
		if (!ok) {
			*body = admin_error("unknown query argument '%s'", req->arg_name[i]);
			return 400;
		}
	}
	return 0;
}

/* ---- status --------------------------------------------------------------------------------- */

struct flow_counts {
	json_int_t by_proto[PROTO__COUNT];
};

static void count_flow(const struct flow *f, void *arg)
{
	struct flow_counts *c = arg;
	if ((int)f->proto >= 0 && f->proto < PROTO__COUNT)
		c->by_proto[f->proto]++;
}

static json_t *listeners_json(void)
{
	json_t *list = json_array();
	int n;
	const struct listen_spec *l = self_listeners(&n);
	for (int i = 0; i < n; i++)
		json_array_append_new(list, json_pack("{s:s,s:o,s:i}", "transport", proto_name(l[i].proto), "host",
						      admin_text(l[i].host), "port", l[i].port));
	return list;
}

static int get_status(json_t **body)
{
	struct flow_counts c = {{0}};
	flow_each(count_flow, &c);
	json_t *conns = json_object();
	for (int p = 0; p < PROTO__COUNT; p++)
		json_object_set_new(conns, proto_name((enum transport_proto)p), json_integer(c.by_proto[p]));
	time_t now = time(NULL);
	*body = json_pack("{s:s,s:o,s:I,s:o,s:{s:o,s:I,s:I,s:I,s:{s:I,s:I},s:I,s:I}}", "version", PACKAGE_VERSION,
			  "started_at", iso_time(started_at), "uptime_seconds", (json_int_t)(now - started_at),
			  "listeners", listeners_json(), "counts", "connections", conns, "flows",
			  (json_int_t)flow_count(), "bindings", (json_int_t)location_binding_count(), "aors",
			  (json_int_t)location_aor_count(), "transactions", "server", (json_int_t)metrics_get(M_TXN_SERVER),
			  "client", (json_int_t)metrics_get(M_TXN_CLIENT), "calls", (json_int_t)dialogs_count(),
			  "banned", (json_int_t)limits_banned_count());
	return 200;
}

/* ---- registrations ---------------------------------------------------------------------------- */

static void binding_json(const struct binding *b, void *arg)
{
	const struct flow *f = b->flow_id ? flow_find(b->flow_id) : NULL;
	time_t now = time(NULL);
	json_t *o = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:I,s:o,s:i,s:f,s:b,s:o}", "aor",
			      admin_text(b->aor), "key", admin_text(b->key), "contact", admin_text(b->contact), "uri",
			      admin_text(b->uri), "flow", b->flow_id ? json_integer((json_int_t)b->flow_id) : json_null(),
			      "transport", f ? json_string(proto_name(f->proto)) : json_null(), "peer",
			      admin_text(f ? f->peer_text : NULL), "user_agent", admin_text(b->user_agent),
			      "registered_at", iso_time(b->registered_at), "expires_at", iso_time(b->expires_at),
			      "expires_in", (json_int_t)(b->expires_at > now ? b->expires_at - now : 0), "instance",
			      admin_text(b->instance), "reg_id", b->reg_id, "q", b->q / 1000.0, "outbound",
			      b->outbound, "path", admin_text(b->path));
	json_array_append_new(arg, o);
}

static int registrations(const struct admin_request *req, json_t **body)
{
	static const char *const get_args[] = {"aor", NULL}, *const del_args[] = {"aor", "key", NULL};
	bool del = !strcmp(req->method, "DELETE");
	if (!del && strcmp(req->method, "GET") != 0) {
		*body = admin_error("registrations take GET or DELETE");
		return 405;
	}
	int status = unknown_args(req, del ? del_args : get_args, body);
	if (status)
		return status;
	const char *aor = admin_arg(req, "aor"), *key = admin_arg(req, "key");
	if (aor && !*aor) {
		*body = admin_error("aor is empty");
		return 400;
	}
	if (!del) {
		json_t *list = json_array();
		location_each(aor, binding_json, list);
		*body = json_pack("{s:o}", "registrations", list);
		return 200;
	}
	if (!aor) {
		*body = admin_error("DELETE needs ?aor=sip:user@domain (and optionally &key=)");
		return 400;
	}
	int n = location_remove_by_key(aor, key && *key ? key : NULL);
	if (n == 0) {
		*body = admin_error("no binding of %s%s%s", aor, key ? " with key " : "", key ? key : "");
		return 404;
	}
	log_notice("admin: %d binding%s of %s removed by %s", n, n == 1 ? "" : "s", aor, req->peer);
	*body = json_pack("{s:o,s:i}", "aor", admin_text(aor), "removed", n);
	return 200;
}

/* ---- flows -------------------------------------------------------------------------------------- */

static void flow_json(const struct flow *f, void *arg)
{
	time_t now = time(NULL);
	char local[96] = "";
	if (f->local)
		snprintf(local, sizeof(local), "%s:%s%s%s:%d", proto_name(f->local->proto),
			 strchr(f->local->host, ':') ? "[" : "", f->local->host, strchr(f->local->host, ':') ? "]" : "",
			 f->local->port);
	json_array_append_new(arg, json_pack("{s:I,s:s,s:o,s:o,s:o,s:I,s:o,s:I,s:I,s:I}", "id", (json_int_t)f->id,
					     "transport", proto_name(f->proto), "peer", admin_text(f->peer_text), "listener",
					     f->local ? json_string(local) : json_null(), "opened_at",
					     iso_time(f->opened_at), "age_seconds", (json_int_t)(now - f->opened_at),
					     "last_activity", iso_time(f->active_at), "idle_seconds",
					     (json_int_t)(now - f->active_at), "bytes_in", (json_int_t)f->bytes_in,
					     "bytes_out", (json_int_t)f->bytes_out));
}

/** A flow id: decimal digits only, as /flows lists them. */
static int parse_id(const char *text, uint64_t *id)
{
	if (!text || !*text || strspn(text, "0123456789") != strlen(text) || strlen(text) > 20)
		return -1;
	errno = 0;
	unsigned long long v = strtoull(text, NULL, 10);
	if (errno || v == 0)
		return -1;
	*id = v;
	return 0;
}

static int flows(const struct admin_request *req, json_t **body)
{
	static const char *const none[] = {NULL};
	int status = unknown_args(req, none, body);
	if (status)
		return status;
	const char *id_text = path_rest(req->path, API "/flows");
	if (!strcmp(req->method, "GET") && !id_text) {
		json_t *list = json_array();
		flow_each(flow_json, list);
		*body = json_pack("{s:o}", "flows", list);
		return 200;
	}
	if (strcmp(req->method, "DELETE") != 0 || !id_text) {
		*body = admin_error("%s", id_text ? "a flow takes DELETE only" : "flows take GET, or DELETE /flows/ID");
		return 405;
	}
	uint64_t id;
	if (parse_id(id_text, &id) != 0) {
		*body = admin_error("'%s' is not a flow id (a decimal number from GET /api/v1/flows)", id_text);
		return 400;
	}
	struct flow *f = flow_find(id);
	if (!f) {
		*body = admin_error("no open flow %s", id_text);
		return 404;
	}
	log_notice("admin: flow %s (%s from %s) closed by %s", id_text, proto_name(f->proto), f->peer_text,
		   req->peer);
	flow_close(f);
	*body = json_pack("{s:I,s:b}", "id", (json_int_t)id, "closing", 1);
	return 200;
}

/* ---- calls ---------------------------------------------------------------------------------------- */

static json_t *leg_json(const char *role, uint64_t flow_id)
{
	const struct flow *f = flow_id ? flow_find(flow_id) : NULL;
	return json_pack("{s:s,s:o,s:o,s:o}", "role", role, "flow", flow_id ? json_integer((json_int_t)flow_id) : json_null(),
			 "transport", f ? json_string(proto_name(f->proto)) : json_null(), "peer",
			 admin_text(f ? f->peer_text : NULL));
}

static void dialog_json(const struct dialog *d, void *arg)
{
	time_t now = time(NULL);
	json_array_append_new(arg, json_pack("{s:o,s:o,s:o,s:o,s:I,s:o,s:[o,o]}", "call_id", admin_text(d->call_id),
					     "caller", admin_text(d->caller), "callee", admin_text(d->callee), "started_at", iso_time(d->started_at),
					     "duration_seconds", (json_int_t)(now - d->started_at), "last_activity",
					     iso_time(d->active_at), "legs", leg_json("caller", d->caller_flow),
					     leg_json("callee", d->callee_flow)));
}

/* ---- bans ------------------------------------------------------------------------------------------ */

static void ban_json(const char *addr, int left, void *arg)
{
	json_array_append_new(arg, json_pack("{s:o,s:i}", "address", admin_text(addr), "seconds_left", left));
}

static int bans(const struct admin_request *req, json_t **body)
{
	const char *addr = path_rest(req->path, API "/bans");
	if (!strcmp(req->method, "GET") && !addr) {
		json_t *list = json_array();
		limits_each_ban(ban_json, list);
		*body = json_pack("{s:o}", "bans", list);
		return 200;
	}
	if (strcmp(req->method, "DELETE") != 0 || !addr) {
		*body = admin_error("%s", addr ? "a ban takes DELETE only" : "bans take GET, or DELETE /bans/ADDRESS");
		return 405;
	}
	int rc = limits_unban(addr);
	if (rc == -2) {
		*body = admin_error("'%s' is not a numeric IPv4 or IPv6 address", addr);
		return 400;
	}
	if (rc == -1) {
		*body = admin_error("%s is not banned", addr);
		return 404;
	}
	log_notice("admin: ban on %s lifted by %s", addr, req->peer);
	*body = json_pack("{s:o,s:b}", "address", admin_text(addr), "lifted", 1);
	return 200;
}

/* ---- reload and warnings ---------------------------------------------------------------------------- */

static json_t *list_json(const struct string_list *l)
{
	json_t *a = json_array();
	for (int i = 0; i < l->count; i++)
		json_array_append_new(a, admin_text(l->item[i])); /* may quote the file */
	return a;
}

static int reload(admin_reload_fn fn, const struct admin_request *req, json_t **body)
{
	log_notice("admin: reload asked by %s", req->peer);
	struct reload_report r;
	memset(&r, 0, sizeof(r));
	fn(&r);
	*body = json_pack("{s:b,s:o,s:o,s:o,s:b,s:b}", "ok", r.ok, "errors", list_json(&r.errors), "applied",
			  list_json(&r.applied), "restart_required", list_json(&r.restart), "users_reloaded",
			  r.users_ok, "tls_reloaded", r.tls_ok);
	bool ok = r.ok;
	reload_report_clear(&r);
	return ok ? 200 : 422;
}

static void warning_json(const struct log_recent *line, void *arg)
{
	json_array_append_new(arg, json_pack("{s:I,s:o,s:s,s:o}", "seq", (json_int_t)line->seq, "time",
					     iso_time((time_t)line->when), "level", log_level_name(line->level),
					     "text", admin_text(line->text)));
}

static int warnings(const struct admin_request *req, json_t **body)
{
	static const char *const known[] = {"after", NULL};
	int status = unknown_args(req, known, body);
	if (status)
		return status;
	const char *after = admin_arg(req, "after");
	uint64_t seq = 0;
	if (after && *after && strcmp(after, "0") != 0 && parse_id(after, &seq) != 0) {
		*body = admin_error("after must be a sequence number");
		return 400;
	}
	json_t *list = json_array();
	log_recent_each((unsigned long)seq, warning_json, list);
	*body = json_pack("{s:o,s:I}", "warnings", list, "last", (json_int_t)log_recent_last());
	return 200;
}

/* ---- routing ------------------------------------------------------------------------------------------ */

static int method_only(const struct admin_request *req, const char *method, json_t **body)
{
	if (strcmp(req->method, method) == 0)
		return 0;
	*body = admin_error("%s takes %s only", req->path, method);
	return 405;
}

int admin_api_handle(const struct admin_request *req, admin_reload_fn reload_fn, json_t **body)
{
	static const char *const none[] = {NULL};
	const char *p = req->path;
	int status;
	if (!strcmp(p, API "/registrations"))
		return registrations(req, body);
	if (!strcmp(p, API "/flows") || path_rest(p, API "/flows"))
		return flows(req, body);
	if (!strcmp(p, API "/bans") || path_rest(p, API "/bans"))
		return (status = unknown_args(req, none, body)) ? status : bans(req, body);
	if (!strcmp(p, API "/history"))
		return (status = method_only(req, "GET", body)) || (status = unknown_args(req, none, body))
			       ? status
			       : (*body = admin_history_json(), 200);
	if (!strcmp(p, API "/warnings"))
		return (status = method_only(req, "GET", body)) ? status : warnings(req, body);
	if (!strcmp(p, API "/status") || !strcmp(p, API "/calls") || !strcmp(p, API "/reload")) {
		bool post = !strcmp(p, API "/reload");
		if ((status = method_only(req, post ? "POST" : "GET", body)) || (status = unknown_args(req, none, body)))
			return status;
		if (post)
			return reload(reload_fn, req, body);
		if (!strcmp(p, API "/status"))
			return get_status(body);
		json_t *list = json_array();
		dialogs_each(dialog_json, list);
		*body = json_pack("{s:o}", "calls", list);
		return 200;
	}
	*body = admin_error("no such resource: %s (see doc/operations.md)", p);
	return 404;
}

void admin_api_started(time_t when) { started_at = when; }

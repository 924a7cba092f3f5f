/** @file sipedgectl.c  The operator's command line: a client of sipedge's admin API.
 *
 * It shares no code with the daemon: it speaks HTTP to admin.listen with libcurl and reads the
 * JSON answers with jansson, the library the daemon writes them with. A C program rather than
 * a shell script over curl because the tables it prints come from parsed JSON (a script would
 * need jq as well, and quoting AORs into URLs by hand); see doc/operations.md.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SIPEDGE_SYSCONFDIR
#define SIPEDGE_SYSCONFDIR "/etc"
#endif
#define DEFAULT_URL "http://127.0.0.1:8088"
#define DEFAULT_TOKEN_FILE SIPEDGE_SYSCONFDIR "/sipedge/admin-token"

enum { EXIT_API = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3 };

static struct {
	const char *url;
	const char *token_file;
	bool json;
	char token[512];
} Ctl;

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sipedgectl [options] COMMAND [ARGS]\n"
		"commands:\n"
		"  status                 version, uptime, listeners, counts\n"
		"  reg list [AOR]         registrations (all, or of one AOR)\n"
		"  reg show AOR           the same for one AOR, every field\n"
		"  reg rm AOR [KEY]       remove the AOR's bindings (or only the one with KEY)\n"
		"  flows                  open connections and UDP peers\n"
		"  flows close ID         close one\n"
		"  calls                  calls in progress\n"
		"  bans                   sources banned by the rate limit\n"
		"  bans lift ADDRESS      end a ban\n"
		"  reload                 read the configuration again (as SIGHUP)\n"
		"options:\n"
		"  -u, --url URL          the admin listener (default $SIPEDGE_ADMIN_URL or " DEFAULT_URL ")\n"
		"  -t, --token-file FILE  the bearer token (default $SIPEDGE_ADMIN_TOKEN_FILE or\n"
		"                         " DEFAULT_TOKEN_FILE ")\n"
		"      --json             print the API's JSON answer as it is (indented)\n"
		"  -h, --help             this text\n"
		"exit status: 0 done, 1 the daemon refused (its message is printed), 2 usage, 3 no connection\n");
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

struct buffer {
	char *data;
	size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct buffer *b = arg;
	size_t add = size * n;
	char *d = realloc(b->data, b->len + add + 1);
	if (!d)
		return 0;
	memcpy(d + b->len, p, add);
	b->len += add;
	d[b->len] = '\0';
	b->data = d;
	return add;
}

static void wipe_token(void) { explicit_bzero(Ctl.token, sizeof(Ctl.token)); }

static int read_token(void)
{
	FILE *f = fopen(Ctl.token_file, "r");
	if (f)
		setvbuf(f, NULL, _IONBF, 0); /* no copy of the token in stdio's buffer */
	if (!f || !fgets(Ctl.token, sizeof(Ctl.token), f)) {
		fprintf(stderr, "sipedgectl: cannot read the token from %s (-t FILE)\n", Ctl.token_file);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	Ctl.token[strcspn(Ctl.token, "\r\n")] = '\0';
	atexit(wipe_token);
	return 0;
}

/** One request; *out the parsed answer. Returns the exit status. */
static int request(const char *method, const char *path, json_t **out)
{
	CURL *c = curl_easy_init();
	if (!c)
		return EXIT_CONNECT;
	char url[2048], auth[600];
	snprintf(url, sizeof(url), "%s%s", Ctl.url, path);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", Ctl.token);
	struct curl_slist *headers = curl_slist_append(NULL, auth);
	struct buffer b = {NULL, 0};
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "POST"))
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	explicit_bzero(auth, sizeof(auth)); /* the token: no copy of it stays in memory */
	if (rc != CURLE_OK) {
		fprintf(stderr, "sipedgectl: %s: %s\n", Ctl.url, curl_easy_strerror(rc));
		free(b.data);
		return EXIT_CONNECT;
	}
	json_error_t err;
	*out = b.data ? json_loads(b.data, 0, &err) : NULL;
	free(b.data);
	if (!*out) {
		fprintf(stderr, "sipedgectl: %s answered %ld without JSON\n", url, status);
		return EXIT_API;
	}
	if (status >= 400 || status < 200) {
		json_t *msg = json_object_get(*out, "error");
		if (!Ctl.json || !msg)
			fprintf(stderr, "sipedgectl: %ld: %s\n", status, json_is_string(msg) ? json_string_value(msg) : "refused");
		return EXIT_API;
	}
	return 0;
}

/* ---- printing ---------------------------------------------------------------------------------- */

static const char *str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : "-";
}

static long long num(json_t *o, const char *key) { return json_integer_value(json_object_get(o, key)); }

static void print_status(json_t *s)
{
	json_t *c = json_object_get(s, "counts");
	printf("sipedge %s, up %lld s (since %s)\n", str(s, "version"), num(s, "uptime_seconds"), str(s, "started_at"));
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(s, "listeners"), i, l)
		printf("listening %s %s:%lld\n", str(l, "transport"), str(l, "host"), num(l, "port"));
	printf("connections:");
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(c, "connections"), k, v)
		printf(" %s %lld", k, (long long)json_integer_value(v));
	json_t *t = json_object_get(c, "transactions");
	printf("\nflows %lld, bindings %lld (%lld AORs), transactions %lld server %lld client, calls %lld, "
	       "banned %lld\n",
	       num(c, "flows"), num(c, "bindings"), num(c, "aors"), num(t, "server"), num(t, "client"), num(c, "calls"),
	       num(c, "banned"));
}

static void print_regs(json_t *r, bool full)
{
	size_t i;
	json_t *b;
	if (!full)
		printf("%-32s %-6s %-22s %8s  %s\n", "AOR", "PROTO", "PEER", "EXPIRES", "USER AGENT");
	json_array_foreach(json_object_get(r, "registrations"), i, b) {
		if (!full) {
			printf("%-32s %-6s %-22s %7llds  %s\n", str(b, "aor"), str(b, "transport"), str(b, "peer"),
			       num(b, "expires_in"), str(b, "user_agent"));
			continue;
		}
		printf("%s\n  key        %s\n  contact    %s\n  flow       %lld (%s from %s)\n  user agent %s\n"
		       "  registered %s\n  expires    %s (in %lld s)\n  instance   %s, reg-id %lld\n  path       %s\n",
		       str(b, "aor"), str(b, "key"), str(b, "contact"), num(b, "flow"), str(b, "transport"),
		       str(b, "peer"), str(b, "user_agent"), str(b, "registered_at"), str(b, "expires_at"),
		       num(b, "expires_in"), str(b, "instance"), num(b, "reg_id"), str(b, "path"));
	}
	if (full && json_array_size(json_object_get(r, "registrations")) == 0)
		printf("no bindings\n");
}

static void print_flows(json_t *r)
{
	size_t i;
	json_t *f;
	printf("%-18s %-5s %-24s %8s %8s %10s %10s\n", "ID", "PROTO", "PEER", "AGE", "IDLE", "IN", "OUT");
	json_array_foreach(json_object_get(r, "flows"), i, f)
		printf("%-18lld %-5s %-24s %7llds %7llds %10lld %10lld\n", num(f, "id"), str(f, "transport"),
		       str(f, "peer"), num(f, "age_seconds"), num(f, "idle_seconds"), num(f, "bytes_in"),
		       num(f, "bytes_out"));
}

static void print_calls(json_t *r)
{
	size_t i;
	json_t *c;
	printf("%-28s %-28s %-28s %8s\n", "CALL-ID", "CALLER", "CALLEE", "DURATION");
	json_array_foreach(json_object_get(r, "calls"), i, c)
		printf("%-28s %-28s %-28s %7llds\n", str(c, "call_id"), str(c, "caller"), str(c, "callee"),
		       num(c, "duration_seconds"));
}

static void print_bans(json_t *r)
{
	size_t i;
	json_t *b;
	printf("%-40s %s\n", "ADDRESS", "SECONDS LEFT");
	json_array_foreach(json_object_get(r, "bans"), i, b)
		printf("%-40s %lld\n", str(b, "address"), num(b, "seconds_left"));
}

static void print_list(const char *title, json_t *a)
{
	size_t i;
	json_t *v;
	if (json_array_size(a) == 0)
		return;
	printf("%s:", title);
	json_array_foreach(a, i, v)
		printf(" %s", json_string_value(v));
	printf("\n");
}

static void print_reload(json_t *r)
{
	printf("%s\n", json_is_true(json_object_get(r, "ok")) ? "reloaded" : "not reloaded: nothing changed");
	print_list("in force now", json_object_get(r, "applied"));
	print_list("changed, kept until a restart", json_object_get(r, "restart_required"));
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(r, "errors"), i, v)
		printf("error: %s\n", json_string_value(v));
}

/* ---- commands ------------------------------------------------------------------------------------ */

/** path with ?name=value pairs (NULL values left out), each value escaped. */
static void with_query(char *out, size_t n, const char *path, const char *n1, const char *v1, const char *n2,
		       const char *v2)
{
	CURL *c = curl_easy_init();
	char *e1 = v1 && c ? curl_easy_escape(c, v1, 0) : NULL, *e2 = v2 && c ? curl_easy_escape(c, v2, 0) : NULL;
	snprintf(out, n, "%s%s%s%s%s%s%s%s%s", path, e1 ? "?" : "", e1 ? n1 : "", e1 ? "=" : "", e1 ? e1 : "",
		 e2 ? "&" : "", e2 ? n2 : "", e2 ? "=" : "", e2 ? e2 : "");
	curl_free(e1);
	curl_free(e2);
	if (c)
		curl_easy_cleanup(c);
}

struct command {
	const char *word, *sub; /* sub NULL: no second word */
	int min_args, max_args; /* after the words */
	const char *method;
	void (*print)(json_t *);
};

static void print_regs_table(json_t *r) { print_regs(r, false); }
static void print_regs_full(json_t *r) { print_regs(r, true); }
static void print_done(json_t *r) { (void)r; printf("done\n"); }

static const struct command commands[] = {
	{"status", NULL, 0, 0, "GET", print_status},	 {"reg", "list", 0, 1, "GET", print_regs_table},
	{"reg", "show", 1, 1, "GET", print_regs_full},	 {"reg", "rm", 1, 2, "DELETE", print_done},
	{"flows", "close", 1, 1, "DELETE", print_done},	 {"flows", "list", 0, 0, "GET", print_flows},
	{"flows", NULL, 0, 0, "GET", print_flows},	 {"calls", NULL, 0, 0, "GET", print_calls},
	{"bans", "lift", 1, 1, "DELETE", print_done},	 {"bans", "list", 0, 0, "GET", print_bans},
	{"bans", NULL, 0, 0, "GET", print_bans},	 {"reload", NULL, 0, 0, "POST", print_reload},
};

static void command_path(const struct command *c, char **args, char *path, size_t n)
{
	char esc[1024] = "";
	if (!strcmp(c->word, "reg"))
		with_query(path, n, "/api/v1/registrations", "aor", args[0], "key", args[0] ? args[1] : NULL);
	else if (c->sub && (!strcmp(c->sub, "close") || !strcmp(c->sub, "lift"))) {
		CURL *cu = curl_easy_init();
		char *e = cu ? curl_easy_escape(cu, args[0], 0) : NULL;
		snprintf(esc, sizeof(esc), "%s", e ? e : "");
		curl_free(e);
		if (cu)
			curl_easy_cleanup(cu);
		snprintf(path, n, "/api/v1/%s/%s", c->word, esc);
	} else
		snprintf(path, n, "/api/v1/%s", c->word);
}

static int run(int argc, char **argv)
{
	const char *word = argv[0], *sub = argc > 1 ? argv[1] : NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *c = &commands[i];
		if (strcmp(c->word, word) != 0 || (c->sub && (!sub || strcmp(c->sub, sub) != 0)))
			continue;
		int skip = c->sub ? 2 : 1, n = argc - skip;
		if (n < c->min_args || n > c->max_args)
			break;
		char *args[2] = {n > 0 ? argv[skip] : NULL, n > 1 ? argv[skip + 1] : NULL};
		char path[2048];
		command_path(c, args, path, sizeof(path));
		json_t *answer = NULL;
		int rc = request(c->method, path, &answer);
		if (answer && Ctl.json) {
			char *text = json_dumps(answer, JSON_INDENT(2));
			printf("%s\n", text ? text : "");
			free(text);
		} else if (answer && (rc == 0 || !strcmp(c->word, "reload"))) {
			c->print(answer);
		}
		json_decref(answer);
		return rc;
	}
	fprintf(stderr, "sipedgectl: unknown command or wrong arguments: %s%s%s\n", word, sub ? " " : "", sub ? sub : "");
	usage(stderr);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"url", required_argument, NULL, 'u'},	 {"token-file", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},	 {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	Ctl.url = getenv("SIPEDGE_ADMIN_URL") ? getenv("SIPEDGE_ADMIN_URL") : DEFAULT_URL;
	Ctl.token_file = getenv("SIPEDGE_ADMIN_TOKEN_FILE") ? getenv("SIPEDGE_ADMIN_TOKEN_FILE") : DEFAULT_TOKEN_FILE;
	int c;
	while ((c = getopt_long(argc, argv, "+u:t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'u': Ctl.url = optarg; break;
		case 't': Ctl.token_file = optarg; break;
		case 'j': Ctl.json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (read_token() != 0)
		return EXIT_USAGE;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = run(argc - optind, argv + optind);
	curl_global_cleanup();
	return rc;
}

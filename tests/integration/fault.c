/*
 * fault: see fault.h. Test-only code; it exits the test on set-up failure.
 */
#define _GNU_SOURCE /* memmem */
#include "fault.h"

#include "sharehub/agent.h"
#include "sharehub/agentdb.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRACKED 64

static harness_t *harnesses[MAX_TRACKED];
static pid_t agents[MAX_TRACKED];

harness_t *fault_harness(const harness_org_t *orgs, size_t n_orgs)
{
    harness_t *h = harness_new(orgs, n_orgs, SHUB_FIXTURES "/broker/agreements");
    for (size_t i = 0; h && i < MAX_TRACKED; i++)
        if (!harnesses[i]) {
            harnesses[i] = h;
            break;
        }
    return h;
}

void fault_destroy(harness_t **h_p)
{
    for (size_t i = 0; h_p && *h_p && i < MAX_TRACKED; i++)
        if (harnesses[i] == *h_p)
            harnesses[i] = NULL;
    harness_destroy(h_p);
}

pid_t fault_agent(const harness_t *h, const char *org, const char *const *extra,
                  const char *const *env)
{
    pid_t pid = harness_agent_start(h, org, extra, env);
    for (size_t i = 0; i < MAX_TRACKED; i++)
        if (!agents[i]) {
            agents[i] = pid;
            break;
        }
    return pid;
}

void fault_forget(pid_t pid)
{
    for (size_t i = 0; i < MAX_TRACKED; i++)
        if (agents[i] == pid)
            agents[i] = 0;
}

int fault_stop(pid_t pid, int sig)
{
    fault_forget(pid);
    return harness_proc_stop(pid, sig);
}

int fault_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < MAX_TRACKED; i++) {
        if (agents[i])
            fault_stop(agents[i], SIGKILL);
        harness_t *h = harnesses[i];
        if (h)
            fault_destroy(&h);
    }
    return 0;
}

double fault_scale(void)
{
    const char *s = getenv("SHUB_FAULT_SCALE");
    double v = s ? strtod(s, NULL) : 1.0;
    return v < 0.01 ? 0.01 : v > 1.0 ? 1.0 : v;
}

int fault_count(int full, int least)
{
    int n = (int)(full * fault_scale() + 0.5);
    return n < least ? least : n;
}

int64_t fault_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void fault_nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t seed_value, rng_state;

uint64_t fault_seed(void)
{
    if (!seed_value) {
        const char *s = getenv("SHUB_FAULT_SEED");
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        seed_value = s ? strtoull(s, NULL, 10) : (uint64_t)t.tv_nsec ^ (uint64_t)t.tv_sec;
        if (!seed_value)
            seed_value = 1;
        rng_state = seed_value;
    }
    return seed_value;
}

uint32_t fault_random(uint32_t n)
{
    fault_seed();
    /* xorshift64*: plenty for spacing faults, and the same on every machine */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t v = rng_state * 2685821657736338717ULL;
    return n ? (uint32_t)((v >> 32) % n) : 0;
}

int fault_run(char *out, size_t size, const char *const *argv)
{
    char tmpl[] = "/tmp/shub-fault-run-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        perror("fault: mkstemp");
        exit(1);
    }
    unlink(tmpl);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fault: fork");
        exit(1);
    }
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        dup2(in, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (out && size) {
        ssize_t n = pread(fd, out, size - 1, 0);
        out[n > 0 ? n : 0] = '\0';
    }
    close(fd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int fault_copy_db(const char *from, const char *to)
{
    sqlite3 *src = NULL, *dst = NULL;
    int rc = -1;
    unlink(to);
    if (sqlite3_open_v2(from, &src, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_open(to, &dst) == SQLITE_OK) {
        sqlite3_busy_timeout(src, 5000);
        sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
        if (b && sqlite3_backup_step(b, -1) == SQLITE_DONE)
            rc = 0;
        if (b)
            sqlite3_backup_finish(b);
    }
    if (rc)
        fprintf(stderr, "fault: copy %s: %s\n", from, dst ? sqlite3_errmsg(dst) : "?");
    sqlite3_close(src);
    sqlite3_close(dst);
    return rc;
}

int fault_sql(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    int rc = sqlite3_open(path, &db) == SQLITE_OK
                 ? sqlite3_exec(db, sql, NULL, NULL, &msg)
                 : SQLITE_CANTOPEN;
    if (rc != SQLITE_OK)
        fprintf(stderr, "fault: sql on %s: %s\n  %s\n", path, msg ? msg : "cannot open",
                sql);
    sqlite3_free(msg);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

char *fault_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fileno(f), &st) == 0 && (buf = malloc((size_t)st.st_size + 1))) {
        size_t n = fread(buf, 1, (size_t)st.st_size, f);
        buf[n] = '\0';
        if (len)
            *len = n;
    }
    fclose(f);
    return buf;
}

bool fault_file_has(const char *path, const void *needle, size_t len)
{
    size_t n = 0;
    char *buf = fault_read_file(path, &n);
    bool found = buf && len && memmem(buf, n, needle, len) != NULL;
    free(buf);
    return found;
}

void fault_path(const harness_t *h, const char *file, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", h->dir, file);
}

struct fault_outbox {
    shub_agent_config_t *cfg;
    shub_agentdb_t *db;
};

fault_outbox_t *fault_outbox_open(const harness_t *h, const char *org)
{
    fault_outbox_t *o = calloc(1, sizeof *o);
    char path[400], line[1024];
    shub_err_t err;
    if (!o || shub_agent_config_load(h->dir, org, &o->cfg, &err) != 0) {
        fprintf(stderr, "fault: config for %s: %s\n", org,
                shub_err_format(&err, line, sizeof line));
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s.db", h->dir, org);
    if (shub_agentdb_open(path, true, &o->db, &err) != 0) {
        fprintf(stderr, "fault: store %s: %s\n", path,
                shub_err_format(&err, line, sizeof line));
        exit(1);
    }
    return o;
}

void fault_outbox_close(fault_outbox_t **o_p)
{
    if (!o_p || !*o_p)
        return;
    shub_agentdb_close(&(*o_p)->db);
    shub_agent_config_destroy(&(*o_p)->cfg);
    free(*o_p);
    *o_p = NULL;
}

int fault_submit(fault_outbox_t *o, const char *json, shub_id_t *id)
{
    shub_err_t err;
    shub_id_t got;
    int rc =
        shub_agent_submit(o->db, o->cfg, json, strlen(json), shub_now_ms(), &got, &err);
    if (rc) {
        char line[1024];
        fprintf(stderr, "fault: submit: %s\n", shub_err_format(&err, line, sizeof line));
        return -1;
    }
    if (id)
        *id = got;
    return 0;
}

void fault_referral(char *out, size_t size, int n, int dash, bool also_bcc)
{
    snprintf(out, size,
             "{\"event\": \"marac.referral\", \"occurred\": %lld, \"case\": \"WMP-%d\","
             " \"subject\": \"SUBJ-%d\", \"area\": \"coventry\","
             " \"purpose\": \"marac-risk-management\", \"basis\": \"uk-gdpr-6-1-e\","
             " \"consent\": \"given\", \"to\": [\"marac@coventry\"%s],"
             " \"payload\": {\"victim\": {\"name\": \"Jane Example\","
             " \"dob\": \"1990-04-01\", \"address\": {\"postcode\": \"CV1 2AB\"}},"
             " \"risk\": {\"dash_score\": %d},"
             " \"incident\": {\"summary\": \"Assault at home address.\"},"
             " \"referral\": {\"route\": \"police\"}}}",
             (long long)(shub_now_ms() - 60000), n, n % 97, also_bcc ? ", \"bcc\"" : "",
             dash);
}

void fault_notification(char *out, size_t size, int n)
{
    snprintf(out, size,
             "{\"event\": \"idva.notification\", \"occurred\": %lld,"
             " \"case\": \"MARAC-%d\", \"subject\": \"SUBJ-%d\", \"area\": \"coventry\","
             " \"purpose\": \"marac-risk-management\", \"basis\": \"uk-gdpr-6-1-e\","
             " \"consent\": \"given\", \"to\": [\"idva@coventry\"],"
             " \"payload\": {\"victim\": {\"name\": \"Jane Example\"},"
             " \"risk\": {\"dash_score\": 17}}}",
             (long long)(shub_now_ms() - 60000), n, n % 97);
}

#ifndef RELAYWATCH_DB_ALERTS_H
#define RELAYWATCH_DB_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

/*
 * The alert ledger of `check --new` in the database (table `alerts`, and the `judged` flag of
 * `chunks`; `migrate` creates both). The ledger, not the timing of two runs, decides what is
 * new: an alert is inserted under a unique key (rule, host, subject, period, level), and only
 * the run whose insert took reports it. A run prints its new alerts before it commits them, so a
 * run killed in between loses nothing: its transaction dies with it and the next run inserts
 * and reports them again (at least once across a crash, exactly once otherwise).
 *
 * Each function returns 0 (or what it documents), or -1 after logging the server's message.
 * Those that work inside a transaction never replay a statement on their own: a replay could
 * not bring back what the transaction had done.
 */

/* The chunks whose hours no `check --new` has judged yet. */
struct db_unjudged {
	char (*id)[65];        /* chunk ids, NUL-terminated hex */
	int64_t *first, *last; /* first and last stamped line (UTC), ingested_at when none */
	size_t count;
};

void db_unjudged_finish(struct db_unjudged *u);

/* Reads every unjudged chunk into u (zeroed by the caller). */
int db_alerts_unjudged(struct db *db, struct db_unjudged *u);

/* Marks the chunks of u judged (in batches, each its own statement). */
int db_alerts_mark_judged(struct db *db, const struct db_unjudged *u);

/* One alert as the ledger keeps it. */
struct db_alert {
	const char *rule;          /* its name, "relay_rcpt", ... */
	struct span host, subject; /* whole: never wider than their columns (see schema.h) */
	int64_t period;            /* the start of its hour or day, or a stale host's newest line */
	unsigned level;            /* 1 warning, 2 critical */
	bool daily;
	uint64_t value, threshold;
};

/* Starts the transaction that records this run's alerts. */
int db_alerts_begin(struct db *db);

/*
 * Inserts a unless the ledger holds it; *is_new says whether this insert took. An alert that a
 * concurrent run has inserted but not yet committed makes this wait for that run's commit (then
 * not new) or rollback (then new). to_send: whether its alert_command is still to run. Returns
 * 0; 1 when the server rolled the transaction back in a lock conflict (roll back and start the
 * transaction again); -1 on another error.
 */
int db_alerts_record(struct db *db, const struct db_alert *a, bool to_send, bool *is_new);

/* Commits the recorded alerts. After a failure they are not recorded (rolled back). */
int db_alerts_commit(struct db *db);

/* Rolls the transaction back (nothing logged: a lost connection is no error here). */
void db_alerts_rollback(struct db *db);

/*
 * The alerts whose alert_command is still to run (it failed, or the run that found them was
 * killed first), oldest first: n[0] id, key[0] rule, key[1] host, key[2] subject, when[0]
 * period, n[1] level, n[2] daily, n[3] value, n[4] threshold. NULL after logging.
 */
struct db_rows *db_alerts_pending(struct db *db);

/*
 * Starts a transaction and locks alert id if it is still to send and no other run holds it
 * (FOR UPDATE SKIP LOCKED: a run that sends it holds it until it commits, and a run that died
 * released it with its connection). 1 locked: end with db_alerts_release; 0 not (no
 * transaction is left open); -1 error.
 */
int db_alerts_claim(struct db *db, uint64_t id);

/* Ends a claim: sent marks the alert done; otherwise its tries go up and it stays to send. */
int db_alerts_release(struct db *db, uint64_t id, bool sent);

#endif

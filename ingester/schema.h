#ifndef RELAYWATCH_SCHEMA_H
#define RELAYWATCH_SCHEMA_H

#include <stdint.h>

/*
 * The database schema, the one place that names the tables and their columns and gives their
 * widths: migrate creates the tables from it (db_schema.c), agg cuts every field to its column's
 * width (so strict mode never rejects a row), the ledger cuts host and source, and the queries of
 * check, report and purge take the table names from it.
 *
 * The hourly tables are hour_utc, then the text fields that agg counts by (col[1..ncols-2], in
 * primary-key order), then the count n; they come first, in the order of enum agg_table.
 */

/*
 * The schema version this program creates; migrate upgrades step by step up to it. A new table is
 * an entry below with the version that adds it; other changes are statements of that step in
 * db_schema.c.
 */
#define SCHEMA_VERSION 4

/* The table names as literals, so that queries can spell them inside their SQL text. */
#define SCHEMA_EVENT_HOURLY_NAME  "event_hourly"
#define SCHEMA_RELAY_HOURLY_NAME  "relay_hourly"
#define SCHEMA_DENIED_HOURLY_NAME "denied_hourly"
#define SCHEMA_CHUNKS_NAME        "chunks"
#define SCHEMA_ALERTS_NAME        "alerts"
#define SCHEMA_CHUNK_PARTS_NAME   "chunk_parts"

enum schema_table_id {
	SCHEMA_EVENT_HOURLY = 0,
	SCHEMA_RELAY_HOURLY = 1,
	SCHEMA_DENIED_HOURLY = 2,
	SCHEMA_CHUNKS = 3,
	SCHEMA_ALERTS = 4,
	SCHEMA_CHUNK_PARTS = 5, /* the files of packs, each under its own identity */
	SCHEMA_TABLES = 6,
};

#define SCHEMA_MAX_COLUMNS 14

struct schema_column {
	const char *name;
	const char
		*type;  /* as CREATE TABLE spells it; NULL: VARBINARY(width) NOT NULL DEFAULT '' */
	uint16_t width; /* bytes of a VARBINARY column; 0 for the others */
};

struct schema_table {
	const char *name;
	unsigned version; /* the schema version whose migration step creates the table */
	unsigned ncols;
	struct schema_column col[SCHEMA_MAX_COLUMNS];
	const char *keys; /* the PRIMARY KEY and KEY clauses */
};

extern const struct schema_table schema_tables[SCHEMA_TABLES];

/* The ledger's text columns, cut to their widths before they are written. */
enum {
	SCHEMA_CHUNK_HOST = 1,   /* chunks.col[] index of host */
	SCHEMA_CHUNK_SOURCE = 2, /* and of source */
};

/* The alert ledger's text columns (check --new, db_alerts.c): as wide as the columns that
 * alerts take their host and subject from, so that they are kept whole. */
enum {
	SCHEMA_ALERT_HOST = 2,    /* alerts.col[] index of host */
	SCHEMA_ALERT_SUBJECT = 3, /* and of subject */
};

/* The name of table t. */
static inline const char *schema_name(enum schema_table_id t)
{
	return schema_tables[t].name;
}

/* The number of text fields of hourly table t, and field i's column (i < that number). */
static inline unsigned schema_nfields(enum schema_table_id t)
{
	return schema_tables[t].ncols - 2;
}

static inline const struct schema_column *schema_field(enum schema_table_id t, unsigned i)
{
	return &schema_tables[t].col[i + 1];
}

#endif

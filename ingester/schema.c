#include <stddef.h>

#include "schema.h"

#define VARBINARY(name, width)                                                                     \
	{                                                                                          \
		name, NULL, width                                                                  \
	}
#define HOUR                                                                                       \
	{                                                                                          \
		"hour_utc", "DATETIME NOT NULL", 0                                                 \
	}
/* A table's columns, and their number counted from the same list. */
#define COLUMNS(...)                                                                               \
	.col = {__VA_ARGS__},                                                                      \
	.ncols = sizeof((struct schema_column[]){__VA_ARGS__}) / sizeof(struct schema_column)
#define COUNT                                                                                      \
	{                                                                                          \
		"n", "BIGINT UNSIGNED NOT NULL", 0                                                 \
	}

const struct schema_table schema_tables[SCHEMA_TABLES] = {
	[SCHEMA_EVENT_HOURLY] =
		{
			.name = SCHEMA_EVENT_HOURLY_NAME,
			.version = 1,
			COLUMNS(HOUR, VARBINARY("host", 255), VARBINARY("service", 64),
				VARBINARY("event", 64), VARBINARY("reason", 255), COUNT),
			.keys = "PRIMARY KEY (hour_utc, host, service, event, reason)",
		},
	[SCHEMA_RELAY_HOURLY] =
		{
			.name = SCHEMA_RELAY_HOURLY_NAME,
			.version = 1,
			COLUMNS(HOUR, VARBINARY("host", 255), VARBINARY("service", 64),
				VARBINARY("auth_user", 255), VARBINARY("sender", 255),
				VARBINARY("remote_ip", 64), VARBINARY("rcpt_domain", 255), COUNT),
			.keys = "PRIMARY KEY (hour_utc, host, service, auth_user, sender, "
				"remote_ip,"
				" rcpt_domain), KEY auth_hour (auth_user, hour_utc)",
		},
	[SCHEMA_DENIED_HOURLY] =
		{
			.name = SCHEMA_DENIED_HOURLY_NAME,
			.version = 1,
			COLUMNS(HOUR, VARBINARY("host", 255), VARBINARY("service", 64),
				VARBINARY("remote_ip", 64), VARBINARY("sender", 255),
				VARBINARY("rcpt_domain", 255), COUNT),
			.keys = "PRIMARY KEY (hour_utc, host, service, remote_ip, sender, "
				"rcpt_domain),"
				" KEY ip_hour (remote_ip, hour_utc)",
		},
	[SCHEMA_CHUNKS] =
		{
			.name = SCHEMA_CHUNKS_NAME,
			.version = 1,
			COLUMNS({"chunk_id",
				 "CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL", 0},
				VARBINARY("host", 255), VARBINARY("source", 1024),
				{"first_utc", "DATETIME NULL", 0}, {"last_utc", "DATETIME NULL", 0},
				{"line_count", "BIGINT UNSIGNED NOT NULL", 0},
				{"event_count", "BIGINT UNSIGNED NOT NULL", 0},
				{"malformed_count", "BIGINT UNSIGNED NOT NULL", 0},
				{"bytes", "BIGINT UNSIGNED NOT NULL", 0},
				{"ingested_at", "DATETIME NOT NULL", 0}),
			.keys = "PRIMARY KEY (chunk_id), KEY host_last (host, last_utc)",
		},
	/*
	 * The alert ledger of `check --new`: one row per alert ever reported, unique on what makes
	 * an alert (rule, host, subject, period, level), with whether its alert_command is still to
	 * run (to_send) and how often it was tried.
	 */
	[SCHEMA_ALERTS] =
		{
			.name = SCHEMA_ALERTS_NAME,
			.version = 2,
			COLUMNS({"id", "BIGINT UNSIGNED NOT NULL AUTO_INCREMENT", 0},
				VARBINARY("rule", 32), VARBINARY("host", 255),
				VARBINARY("subject", 255), {"period", "DATETIME NOT NULL", 0},
				{"level", "TINYINT UNSIGNED NOT NULL", 0},
				{"daily", "TINYINT UNSIGNED NOT NULL", 0},
				{"value", "BIGINT UNSIGNED NOT NULL", 0},
				{"threshold", "BIGINT UNSIGNED NOT NULL", 0},
				{"found_at", "DATETIME NOT NULL", 0},
				{"to_send", "TINYINT UNSIGNED NOT NULL", 0},
				{"tries", "INT UNSIGNED NOT NULL DEFAULT 0", 0},
				{"sent_at", "DATETIME NULL", 0}),
			.keys = "PRIMARY KEY (id), UNIQUE KEY alert (rule, host, subject, period, "
				"level),"
				" KEY pending (to_send, id)",
		},
	/* A pack's files: part_id is a file range's identity (manifest_part_id()); its rows go
	 * when purge deletes the chunk. */
	[SCHEMA_CHUNK_PARTS] =
		{
			.name = SCHEMA_CHUNK_PARTS_NAME,
			.version = 3,
			COLUMNS({"part_id",
				 "CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL", 0},
				{"chunk_id",
				 "CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL", 0}),
			.keys = "PRIMARY KEY (part_id), KEY chunk (chunk_id), FOREIGN KEY "
				"(chunk_id) "
				"REFERENCES " SCHEMA_CHUNKS_NAME " (chunk_id) ON DELETE CASCADE",
		},
};

-- The original approach that relaywatch replaces, for scripts/bench: every CHKUSER line loaded raw
-- into a table, the hourly counts computed in SQL. Run by the mariadb client with --local-infile
-- on the output of `zcat | grep 'CHKUSER '` as stdin, in an empty database.
CREATE TABLE raw_lines (
	id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
	line VARBINARY(4096) NOT NULL
) ENGINE = InnoDB;

LOAD DATA LOCAL INFILE '/dev/stdin' INTO TABLE raw_lines
	FIELDS TERMINATED BY X'01' ESCAPED BY '' LINES TERMINATED BY '\n' (line);

-- Header "Mon DD HH:MM:SS host tag:", then the epoch stamp, then the message.
-- The three hourly tables, from one parsing pass over the raw lines.
CREATE TEMPORARY TABLE parsed ENGINE = InnoDB AS
SELECT FLOOR(SUBSTRING_INDEX(rest, ' ', 1) / 3600) * 3600 AS hour,
	SUBSTRING_INDEX(SUBSTRING_INDEX(hdr, ' ', -2), ' ', 1) AS host,
	SUBSTRING_INDEX(SUBSTRING_INDEX(hdr, ' ', -1), '[', 1) AS service,
	SUBSTRING_INDEX(msg, ': from <', 1) AS event,
	SUBSTRING_INDEX(msg, '> : ', -1) AS reason,
	SUBSTRING_INDEX(SUBSTRING_INDEX(msg, ': from <', -1), '> remote <', 1) AS sender_auth,
	SUBSTRING_INDEX(SUBSTRING_INDEX(SUBSTRING_INDEX(msg, '> remote <', -1), '> rcpt <', 1),
		':', -1) AS ip,
	LOWER(SUBSTRING_INDEX(SUBSTRING_INDEX(SUBSTRING_INDEX(msg, '> rcpt <', -1), '> : ', 1),
		'@', -1)) AS domain
FROM (
	SELECT SUBSTRING_INDEX(line, ': ', 1) AS hdr,
		SUBSTRING(line, LENGTH(SUBSTRING_INDEX(line, ': ', 1)) + 3) AS rest,
		SUBSTRING(line, LOCATE(' CHKUSER ', line) + 9) AS msg
	FROM raw_lines
) AS x
WHERE SUBSTRING_INDEX(SUBSTRING_INDEX(rest, ' ', 2), ' ', -1) = 'CHKUSER';

CREATE TABLE raw_event_hourly AS
SELECT FROM_UNIXTIME(hour) AS hour_utc, host, service, event, reason, COUNT(*) AS n
FROM parsed GROUP BY hour, host, service, event, reason;

-- sender_auth is SENDER:AUTHUSER:IDENTIFY.
CREATE TABLE raw_relay_hourly AS
SELECT FROM_UNIXTIME(hour) AS hour_utc, host, service,
	SUBSTRING_INDEX(SUBSTRING_INDEX(sender_auth, ':', -2), ':', 1) AS auth_user,
	SUBSTRING(sender_auth, 1, LENGTH(sender_auth)
		- LENGTH(SUBSTRING_INDEX(sender_auth, ':', -2)) - 1) AS sender,
	ip AS remote_ip, domain AS rcpt_domain, COUNT(*) AS n
FROM parsed WHERE event = 'relaying rcpt' GROUP BY 1, 2, 3, 4, 5, 6, 7;

CREATE TABLE raw_denied_hourly AS
SELECT FROM_UNIXTIME(hour) AS hour_utc, host, service, ip AS remote_ip,
	SUBSTRING(sender_auth, 1, LENGTH(sender_auth)
		- LENGTH(SUBSTRING_INDEX(sender_auth, ':', -2)) - 1) AS sender,
	domain AS rcpt_domain, COUNT(*) AS n
FROM parsed WHERE event = 'rejected relaying' GROUP BY 1, 2, 3, 4, 5, 6;

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "logtime.h"
#include "render.h"

/*
 * The report as one self-contained HTML page: cards, tables and SVG charts, every string from the
 * database through escape_html.
 */

static const char *const grp_color[GRP_COUNT] = {"#d9534f", "#f0ad4e", "#5cb85c", "#5bc0de",
						 "#999999"};

static const char html_css[] =
	"body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;"
	"padding:0 12px 32px;color:#222;background:#f6f6f6}"
	"main{max-width:1100px;margin:0 auto}"
	"h1{font-size:1.4em;margin:16px 0 2px}"
	"h2{font-size:1.15em;margin:28px 0 8px;border-bottom:1px solid #ccc;padding-bottom:4px}"
	".win{color:#555;margin:0 0 12px}"
	".cards{display:flex;flex-wrap:wrap;gap:8px}"
	".card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;"
	"min-width:120px;flex:1 1 120px}"
	".card b{display:block;font-size:1.5em;font-variant-numeric:tabular-nums}"
	".card.crit{border-color:#d9534f;background:#fdecea}"
	".card.warn{border-color:#f0ad4e;background:#fff8e1}"
	".scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}"
	"table{border-collapse:collapse;background:#fff;font-size:14px}"
	"th,td{padding:4px 8px;border-bottom:1px solid #eee;text-align:left;white-space:nowrap}"
	"th{background:#eee;font-weight:600}"
	"td.s{max-width:22em;overflow:hidden;text-overflow:ellipsis}"
	"td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
	"tr.crit td{background:#fdecea}tr.warn td{background:#fff8e1}"
	"tr.crit td:first-child{box-shadow:inset 4px 0 #d9534f}"
	"tr.warn td:first-child{box-shadow:inset 4px 0 #f0ad4e}"
	".chart{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;margin:8px 0;"
	"overflow-x:auto}"
	"svg{width:100%;height:auto;display:block}"
	"svg.vol{min-width:560px}svg.bars{max-width:760px}"
	"svg text{font:11px system-ui,sans-serif;fill:#333}"
	".legend{font-size:13px}.legend span{display:inline-block;margin-right:14px}"
	".legend i{display:inline-block;width:10px;height:10px;margin-right:4px}"
	".none,.note{color:#666;font-size:13px}.cap{font-size:13px;font-weight:600;margin:0 0 4px}"
	".ok{color:#2e7d32}.bad{color:#c62828;font-weight:600}";

/* Bytes as HTML, cut to about max characters (at a character boundary) with an ellipsis. */
static void html_cut(FILE *f, const char *str, size_t n, size_t max)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, chars = 0;

	while (i < n && chars < max) {
		uint32_t cp;
		size_t len = escape_utf8(s + i, n - i, &cp);
		i += len ? len : 1;
		chars++;
	}
	escape_html(f, str, i);
	if (i < n) {
		fputs("&#8230;", f);
	}
}

static const char *status_class(enum check_status st)
{
	return st == CHECK_CRITICAL ? "crit" : st == CHECK_WARNING ? "warn" : "";
}

static void html_volume_chart(FILE *f, const struct report *r);
static void html_bar_chart(FILE *f, const struct section *s, unsigned vcol, const char *id,
			   const char *what);

static void html_section(FILE *f, const struct report *r, int idx)
{
	const struct section *s = &r->sec[idx];
	char buf[64];

	fprintf(f, "<h2 id=\"h-%s\">", s->id);
	escape_html(f, s->title, strlen(s->title));
	fprintf(f, "</h2>\n");
	if (idx == SEC_PERIOD) {
		html_volume_chart(f, r);
	} else if (idx == SEC_ACCOUNTS) {
		html_bar_chart(f, s, 1, "chart-accounts", "top relaying accounts by recipients");
	} else if (idx == SEC_DENIED) {
		html_bar_chart(f, s, 1, "chart-denied", "top sources of rejected relaying");
	}
	if (s->rows == 0) {
		fprintf(f, "<p class=\"none\" id=\"%s\">none</p>\n", s->id);
		return;
	}
	fprintf(f, "<div class=\"scroll\"><table id=\"%s\"><thead><tr>", s->id);
	for (unsigned j = 0; j < s->ncols; j++) {
		const struct col *col = &s->cols[j];
		bool num =
			col->kind == COL_NUM || col->kind == COL_PERMILLE || col->kind == COL_AGE;
		fprintf(f, "<th%s>", num ? " class=\"n\"" : "");
		escape_html(f, col->head, strlen(col->head));
		fputs("</th>", f);
	}
	fputs("</tr></thead><tbody>\n", f);
	for (size_t k = 0; k < s->rows; k++) {
		const char *cls = status_class(s->status[k]);
		fprintf(f, "<tr%s%s%s>", *cls ? " class=\"" : "", cls, *cls ? "\"" : "");
		for (unsigned j = 0; j < s->ncols; j++) {
			const struct col *col = &s->cols[j];
			const struct cell *c = &s->cells[k * s->ncols + j];
			bool num = col->kind == COL_NUM || col->kind == COL_PERMILLE ||
				   col->kind == COL_AGE;
			fprintf(f, "<td class=\"%s\" data-col=\"%s\"",
				col->kind == COL_STR ? "s"
				: num                ? "n"
						     : "t",
				col->name);
			if (col->kind == COL_STR) {
				/* Long values are cut on screen; the title shows them whole. */
				fputs(" title=\"", f);
				escape_html(f, c->s ? c->s : "", c->n);
				fputs("\">", f);
				escape_html(f, c->s ? c->s : "", c->n);
			} else {
				fputc('>', f);
				render_cell(FMT_HTML, col->kind, c, buf, sizeof(buf));
				escape_html(f, buf, strlen(buf));
			}
			fputs("</td>", f);
		}
		fputs("</tr>\n", f);
	}
	fputs("</tbody></table></div>\n", f);
	if (s->note != NULL) {
		fprintf(f, "<p class=\"note\">");
		escape_html(f, s->note, strlen(s->note));
		fprintf(f, "</p>\n");
	}
}

/* 1, 2 or 5 times a power of ten, >= v. */
static uint64_t nice_max(uint64_t v)
{
	uint64_t p = 1;

	if (v <= 1) {
		return 1;
	}
	while (p <= UINT64_MAX / 10 && p * 10 < v) {
		p *= 10;
	}
	if (p >= v) {
		return p;
	}
	if (2 * p >= v) {
		return 2 * p;
	}
	if (5 * p >= v) {
		return 5 * p;
	}
	return 10 * p;
}

/* Stacked bars of the event groups per hour (per day for windows over a month). */
static void html_volume_chart(FILE *f, const struct report *r)
{
	const double W = 760, H = 240, L = 56, R = 8, T = 10, B = 36;
	struct bucket *v = NULL;
	size_t n = 0;
	bool day = r->nhourly > 24 * 31;
	uint64_t max = 0;
	char t[20];

	v = calloc(r->nhourly ? r->nhourly : 1, sizeof(*v));
	if (v == NULL) {
		return;
	}
	for (size_t i = 0; i < r->nhourly; i++) {
		int64_t p = day ? logtime_day_floor(r->hourly[i].t) : r->hourly[i].t;
		if (n == 0 || v[n - 1].t != p) {
			v[n++].t = p;
		}
		for (int g = 0; g < GRP_COUNT; g++) {
			v[n - 1].v[g] += r->hourly[i].v[g];
		}
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t s = 0;
		for (int g = 0; g < GRP_COUNT; g++) {
			s += v[i].v[g];
		}
		max = s > max ? s : max;
	}
	max = nice_max(max);
	double pw = W - L - R, ph = H - T - B, bw = n ? pw / (double)n : pw;
	fprintf(f,
		"<div class=\"chart\"><div class=\"cap\">CHKUSER events per %s by type</div>\n"
		"<svg class=\"vol\" id=\"chart-volume\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
		"aria-label=\"events per %s by type\">\n",
		day ? "day" : "hour", W, H, day ? "day" : "hour");
	for (int k = 0; k <= 4; k++) {
		double y = T + ph - ph * k / 4.0;
		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%" PRIu64 "</text>\n",
			L, y, W - R, y, L - 4, y + 4,
			max / 4 * (uint64_t)k + (k == 4 ? max % 4 : 0));
	}
	for (size_t i = 0; i < n; i++) {
		double x = L + bw * (double)i, y = T + ph;
		logtime_format(v[i].t, t);
		fprintf(f, "<g><title>%.*s", day ? 10 : 16, t);
		for (int g = 0; g < GRP_COUNT; g++) {
			fprintf(f, "\n%s: %" PRIu64, report_group_name[g], v[i].v[g]);
		}
		fputs("</title>", f);
		for (int g = 0; g < GRP_COUNT; g++) {
			double h = ph * (double)v[i].v[g] / (double)max;
			if (v[i].v[g] == 0) {
				continue;
			}
			y -= h;
			fprintf(f,
				"<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
				"fill=\"%s\"/>",
				x, y, bw > 2 ? bw * 0.85 : bw, h, grp_color[g]);
		}
		fputs("</g>\n", f);
	}
	size_t step = n / 8 + 1;
	for (size_t i = 0; i < n; i += step) {
		logtime_format(v[i].t, t);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%.5s%s%.*s</text>\n", L + bw * (double)i,
			H - B + 16, t + 5, day ? "" : " ", day ? 0 : 5, t + 11);
	}
	fputs("</svg><div class=\"legend\">", f);
	for (int g = 0; g < GRP_COUNT; g++) {
		fprintf(f, "<span><i style=\"background:%s\"></i>%s</span>", grp_color[g],
			report_group_name[g]);
	}
	fprintf(f, "</div></div>\n");
	free(v);
}

/* Horizontal bars of the first rows of a section: label column 0, value column vcol. */
static void html_bar_chart(FILE *f, const struct section *s, unsigned vcol, const char *id,
			   const char *what)
{
	const double W = 520, LBL = 200, VAL = 60, RH = 22;
	size_t n = s->rows < 10 ? s->rows : 10;
	uint64_t max = 1;

	if (n == 0) {
		return;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t v = (uint64_t)s->cells[i * s->ncols + vcol].v;
		max = v > max ? v : max;
	}
	fprintf(f,
		"<div class=\"chart\"><svg class=\"bars\" id=\"%s\" viewBox=\"0 0 %.0f %.0f\" "
		"role=\"img\" "
		"aria-label=\"%s\">\n",
		id, W, RH * (double)n + 6, what);
	for (size_t i = 0; i < n; i++) {
		const struct cell *lbl = &s->cells[i * s->ncols];
		uint64_t v = (uint64_t)s->cells[i * s->ncols + vcol].v;
		double y = 3 + RH * (double)i, w = (W - LBL - VAL) * (double)v / (double)max;
		const char *color = s->status[i] == CHECK_CRITICAL  ? "#d9534f"
				    : s->status[i] == CHECK_WARNING ? "#f0ad4e"
								    : "#4a78b0";
		fprintf(f, "<g><title>");
		escape_html(f, lbl->s ? lbl->s : "", lbl->n);
		fprintf(f, ": %" PRIu64 "</title><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">",
			v, LBL - 6, y + 15);
		html_cut(f, lbl->s ? lbl->s : "", lbl->n, 30);
		fprintf(f,
			"</text><rect x=\"%.1f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" "
			"fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">%" PRIu64 "</text></g>\n",
			LBL, y + 2, w < 1 ? 1 : w, RH - 6, color, LBL + (w < 1 ? 1 : w) + 4, y + 15,
			v);
	}
	fputs("</svg></div>\n", f);
}

static void html_card(FILE *f, const char *cls, const char *id, uint64_t v, const char *label)
{
	fprintf(f, "<div class=\"card %s\" id=\"%s\"><b>%" PRIu64 "</b>%s</div>\n", cls, id, v,
		label);
}

void render_html(FILE *f, const struct report *r)
{
	char w[64], g[20];
	size_t ncrit = render_count_status(r, CHECK_CRITICAL);

	render_window(r, w, sizeof(w));
	logtime_format(r->now, g);
	/*
	 * The page must work from a mail attachment or a file share without reaching the network:
	 * the policy forbids every fetch (scripts, images, fonts, styles from elsewhere), which
	 * also contains any markup that slipped past the escaping.
	 */
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
		   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		   "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
		   "style-src 'unsafe-inline'\">\n"
		   "<title>relaywatch report ");
	escape_html(f, w, strlen(w));
	fprintf(f, "</title>\n<style>%s</style></head><body><main>\n", html_css);
	fprintf(f, "<h1>relaywatch report</h1>\n<p class=\"win\">%s &middot; ", w);
	if (r->host != NULL) {
		fputs("host ", f);
		escape_html(f, r->host, strlen(r->host));
	} else {
		fputs("all hosts", f);
	}
	fprintf(f, " &middot; generated %.16s UTC</p>\n", g);
	if (r->ledger_empty) {
		fputs("<p class=\"bad\">The ledger holds no chunk: nothing has been ingested "
		      "yet.</p>\n",
		      f);
	}
	fputs("<div class=\"cards\">\n", f);
	html_card(f,
		  ncrit             ? "crit"
		  : r->alerts.count ? "warn"
				    : "",
		  "card-alerts", r->alerts.count, "alerts");
	html_card(f, "", "card-events", r->events, "CHKUSER events");
	html_card(f, "", "card-relayed", r->relayed, "relayed recipients");
	html_card(f, "", "card-denied", r->denied, "rejected relaying");
	fputs("</div>\n", f);

	for (int i = 0; i < SEC_COUNT; i++) {
		html_section(f, r, i);
	}
	fputs("</main></body></html>\n", f);
}

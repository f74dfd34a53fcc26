"""The console's stylesheet, served as /admin/console.css (the pages load nothing else)."""

CSS = """
:root {
  --ink: #1f2933; --muted: #637083; --line: #e4e8ee; --bg: #f4f6f9; --card: #ffffff;
  --accent: #3b6fd8; --accent-ink: #ffffff;
  --answered: #2f9e63; --no-evidence: #e3a21a; --refused: #d64545; --greeting: #8a97a8; --failed: #8f1d1d;
}
* { box-sizing: border-box; }
html { background: var(--bg); }
body { margin: 0; color: var(--ink); font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: #0f1720; color: #e6edf3; padding: 10px 14px; border-radius: 8px; }

header.top { display: flex; align-items: center; gap: 24px; padding: 0 24px; height: 56px; background: #16202c; color: #fff;
  position: sticky; top: 0; z-index: 2; box-shadow: 0 1px 0 rgba(0,0,0,.2); }
.brand { color: #fff; font-weight: 700; font-size: 16px; letter-spacing: .2px; }
.brand span { font-weight: 400; color: #9fb3c8; margin-left: 6px; }
.brand:hover { text-decoration: none; }
nav.main { display: flex; gap: 4px; flex: 1; overflow-x: auto; }
nav.main a { color: #c9d5e2; padding: 7px 12px; border-radius: 6px; white-space: nowrap; }
nav.main a:hover { background: #223042; color: #fff; text-decoration: none; }
nav.main a.on { background: #2c3e55; color: #fff; }
.who { display: flex; align-items: center; gap: 10px; color: #c9d5e2; white-space: nowrap; }
.who form { margin: 0; }
button.link { background: none; border: 0; color: #9fc1ff; cursor: pointer; padding: 0; font: inherit; }

main { max-width: 1360px; margin: 0 auto; padding: 20px 24px 40px; }
.title-row { display: flex; align-items: center; justify-content: space-between; gap: 16px; flex-wrap: wrap; }
h1 { font-size: 22px; margin: 6px 0 16px; }
h2 { font-size: 14px; margin: 0 0 10px; color: var(--ink); }
.card h2 + h2, .card table + h2, .card .table-wrap + h2 { margin-top: 18px; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 0 0 24px; }

.periods { display: flex; gap: 2px; background: #e7ebf0; padding: 3px; border-radius: 8px; }
.periods a { padding: 4px 10px; border-radius: 6px; color: var(--muted); }
.periods a.on { background: #fff; color: var(--ink); box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.periods a:hover { text-decoration: none; color: var(--ink); }

.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 12px; margin-bottom: 16px; }
.kpi { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; border-top: 3px solid #c5ccd6; }
.kpi.t-answered { border-top-color: var(--answered); }
.kpi.t-no-evidence { border-top-color: var(--no-evidence); }
.kpi.t-refused { border-top-color: var(--refused); }
.kpi-label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .4px; }
.kpi-value { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; margin: 2px 0; white-space: nowrap; }
.kpi-sub { color: var(--muted); font-size: 12px; }

.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px; min-width: 0; }
.card.wide { grid-column: 1 / -1; }
.note { color: var(--muted); font-size: 12px; margin: -6px 0 10px; }
.lead { color: var(--muted); margin: 0 0 14px; }
.empty { color: var(--muted); font-style: italic; margin: 6px 0; }
svg.chart { width: 100%; height: auto; display: block; }

.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .3px;
  border-bottom: 1px solid var(--line); padding: 6px 10px; white-space: nowrap; }
td { border-bottom: 1px solid #f0f2f5; padding: 7px 10px; vertical-align: top; }
tbody tr:hover td { background: #f8fafc; }
th.num, td.num { text-align: right; white-space: nowrap; }
td code { background: #f1f4f8; padding: 1px 5px; border-radius: 4px; word-break: break-all; }
td code.id { word-break: normal; white-space: nowrap; }

.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; white-space: nowrap;
  background: #eef1f5; color: var(--muted); }
.o-answered { background: #e3f4ea; color: #1f7a4a; }
.o-no-evidence { background: #fdf1d8; color: #94650b; }
.o-refused { background: #fbe4e4; color: #a32f2f; }
.o-failed { background: #f3d6d6; color: var(--failed); }
.o-greeting { background: #eceff3; color: #5b6777; }
.s-proposed, .s-approved, .s-executing { background: #e5edfc; color: #2b55b0; }
.s-succeeded { background: #e3f4ea; color: #1f7a4a; }
.s-failed { background: #fbe4e4; color: #a32f2f; }
.s-rejected { background: #fdf1d8; color: #94650b; }
.s-expired { background: #eceff3; color: #5b6777; }
.p-full { background: #fbe4e4; color: #a32f2f; }
.p-anonymized { background: #e5edfc; color: #2b55b0; }
.p-off { background: #e3f4ea; color: #1f7a4a; }
.muted { color: var(--muted); }
.person { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.chip { display: inline-block; background: #f1f4f8; border-radius: 4px; padding: 0 6px; margin: 1px 0; font-size: 12px; }
.error { color: var(--refused); }
.vote { white-space: nowrap; }
.vote::before { content: "\25CF"; margin-right: 5px; }
.vote.up::before { color: var(--answered); }
.vote.down::before { color: var(--refused); }

form.filters { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-end; background: var(--card);
  border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; margin-bottom: 16px; }
label { display: flex; flex-direction: column; gap: 3px; font-size: 12px; color: var(--muted); }
form.inline label { flex-direction: row; align-items: center; gap: 8px; font-size: 14px; color: var(--ink); }
form.inline { display: flex; gap: 10px; align-items: center; }
input, select { font: inherit; padding: 6px 8px; border: 1px solid #cdd4dd; border-radius: 6px; background: #fff; color: var(--ink); }
button, .button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid #cdd4dd; background: #fff; color: var(--ink);
  cursor: pointer; display: inline-block; }
button:hover, .button:hover { background: #f4f6f9; text-decoration: none; }
.button.primary, form.filters button, form.inline button { background: var(--accent); border-color: var(--accent); color: var(--accent-ink); }
.button.primary:hover, form.filters button:hover, form.inline button:hover { background: #2f5fc4; }
.reset { align-self: center; }
.help { color: var(--muted); margin: 10px 0 0; padding-left: 18px; }
.pager { display: flex; gap: 16px; align-items: center; justify-content: flex-end; padding-top: 10px; color: var(--muted); }
.crumbs { margin: -8px 0 12px; }

dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 6px 16px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
blockquote.question { margin: 0 0 14px; padding: 10px 14px; border-left: 4px solid var(--accent); background: #f5f8fe; border-radius: 0 8px 8px 0;
  font-size: 15px; white-space: pre-wrap; }
.answer { white-space: pre-wrap; padding: 10px 14px; background: #fafbfc; border: 1px solid var(--line); border-radius: 8px; }

main.narrow { max-width: 560px; padding-top: 48px; }
.signin { margin: 8px 0; }
.alert { background: #fbe4e4; color: #8a2424; padding: 10px 12px; border-radius: 8px; }
.warn { background: #fdf1d8; color: #7a5209; padding: 10px 12px; border-radius: 8px; }

@media (max-width: 700px) {
  .grid { grid-template-columns: 1fr; }
  header.top { flex-wrap: wrap; height: auto; padding: 8px 12px; gap: 8px; }
  main { padding: 12px; }
}
"""

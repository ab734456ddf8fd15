#!/bin/sh
# cfimages-webhook(8) HOOKS, an action's payload template: a JSON file
# whose strings hold {{ path }} placeholders (roots image, status,
# previous_status, event, delivery; delivery.body.X is member X of the
# delivery's JSON body).  A string that is exactly one placeholder becomes
# the value with its JSON type (an object, a number kept exact, a boolean;
# null when it resolves to nothing); one inside a longer string is
# interpolated as text (nothing when missing).  Member names and the rest
# of the template are kept.  Hostile values (quotes, </script>, newlines,
# tabs, backslashes, U+2028, control characters, emoji) leave the body one
# valid JSON text holding exactly those values, and none of </script> or a
# raw U+2028 comes through unescaped.
#
# Mutations this catches: placeholders replaced by plain text substitution
# in the file (quotes break the JSON); a typed placeholder stringified; a
# big integer sent through a double (12345678901234567890 rounded); missing
# values rendered as "null" text inside a longer string; member names
# treated as placeholders; '<' of a value left raw.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

ID=img-tpl
init_db "$ID"
start_receiver app
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
cat >"$T/template.json" <<'EOF'
{
  "id": "{{ image.id }}",
  "status": "{{ status }}",
  "previous": "{{ previous_status }}",
  "event": "{{event}}",
  "metadata": "{{ image.metadata }}",
  "note": "{{ image.metadata.note }}",
  "sentence": "Image {{ image.id }} is {{ status }}: {{ image.metadata.note }}",
  "user_in_text": "user={{ image.metadata.userId }};",
  "object_in_text": "custom={{ delivery.body.custom }}",
  "custom": "{{ delivery.body.custom }}",
  "big": "{{ delivery.body.big }}",
  "flag": "{{ delivery.body.flag }}",
  "missing": "{{ image.metadata.nope }}",
  "missing_in_text": "[{{ delivery.body.nope.deeper }}]",
  "fixed": [1, 2.5, true, null, "plain {braces}", "caf\u00e9"],
  "{{ status }}": "a member name is never a placeholder",
  "nested": {"deep": ["{{ image.status }}", "{{ delivery.body.custom.list }}"]}
}
EOF
action_file "$HOOKS/uploaded.webhook" \
	"url = http://127.0.0.1:$RPORT/templated" \
	"template = $T/template.json"

# The delivery: metadata full of hostile text, extra members for
# delivery.body.
cat >"$T/delivery.json" <<'EOF'
{"id":"img-tpl","uploaded":"2024-01-01T12:00:00.000Z","metadata":{"note":"he said \"hi\" </script><script>alert(1)</script>\nline2\ttab \\ back \u2028 caf\u00e9 \ud83d\ude00 \u0001 {{ status }}","userId":"u-\"7\""},"custom":{"list":[1,2,{"k":"v"}],"html":"<b>&amp;</b>"},"big":12345678901234567890,"flag":false}
EOF
cgi POST "$T/delivery.json"
expect_answer 200 OK
RUN=$(run_id "$ID" uploaded.webhook)
[ -n "$RUN" ] || { fail "no run queued: $(sql 'SELECT hook, state FROM hook_runs')"; exit 1; }
wait_until 60 sql_is "SELECT state FROM hook_runs WHERE id = $RUN" 'done' ||
	fail "the templated run is not done: $(sql "SELECT state, attempts, exit_code, output FROM hook_runs WHERE id = $RUN")"
expect_eq "$(recv_count app)" 1 "requests the receiver got"
recv app 1 body >"$T/body.json"
recv app 1 valid-json || fail "the rendered template is not one JSON text: $(cat "$T/body.json")"
expect_eq "$(recv app 1 header Content-Type)" application/json "Content-Type"

"$PYTHON3" - "$T/body.json" >"$T/check.out" 2>&1 <<'EOF' ||
import json, sys
raw = open(sys.argv[1], "rb").read()
body = json.loads(raw.decode("utf-8"))
note = 'he said "hi" </script><script>alert(1)</script>\nline2\ttab \\ back \u2028 caf\u00e9 \U0001F600 \x01 {{ status }}'
custom = {"list": [1, 2, {"k": "v"}], "html": "<b>&amp;</b>"}
expected = {
    "id": "img-tpl",
    "status": "uploaded",
    "previous": "pending",
    "event": "upload.complete",
    "metadata": {"note": note, "userId": 'u-"7"'},
    "note": note,
    "sentence": "Image img-tpl is uploaded: " + note,
    "user_in_text": 'user=u-"7";',
    "custom": custom,
    "big": 12345678901234567890,
    "flag": False,
    "missing": None,
    "missing_in_text": "[]",
    "fixed": [1, 2.5, True, None, "plain {braces}", "caf\u00e9"],
    "{{ status }}": "a member name is never a placeholder",
    "nested": {"deep": ["uploaded", [1, 2, {"k": "v"}]]},
}
problems = []
for k, v in expected.items():
    if k not in body:
        problems.append("no member %r" % k)
    elif body[k] != v or type(body[k]) != type(v):
        problems.append("%s: %r, expected %r" % (k, body[k], v))
oit = body.get("object_in_text", "")
try:
    oit_ok = oit.startswith("custom=") and json.loads(oit[7:]) == custom
except ValueError:
    oit_ok = False
if not oit_ok:
    problems.append("object_in_text: %r" % oit)
extra = set(body) - set(expected) - {"object_in_text"}
if extra:
    problems.append("members not in the template: %s" % sorted(extra))
if b"</script" in raw.lower():
    problems.append("</script> in the body as sent")
if "\u2028".encode() in raw:
    problems.append("a raw U+2028 in the body as sent")
print("\n".join(problems))
sys.exit(1 if problems else 0)
EOF
	fail "the rendered template: $(cat "$T/check.out")"
expect_sql "SELECT state, attempts, exit_code FROM hook_runs WHERE id = $RUN" "done|1|200" "the templated run"
exit 0

#!/bin/sh
# cfimages-webhook(8) PAYLOADS: Cloudflare custom ids may be paths of up to 1024 UTF-8
# characters.  `products/2024/shoe photo.jpg` (slashes, a space), a
# non-ASCII id and one holding quotes are registered, accepted, applied
# and stored exactly; `show` finds them by the same text.
. "$top_srcdir/tests/lib.sh"

init_db
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
printf '#!/bin/sh\nexit 0\n' >"$HOOKS/uploaded"
chmod 755 "$HOOKS/uploaded"

# delivered ID JSON_STRING: registers ID, delivers an upload whose id is
# JSON_STRING (the same text, JSON-escaped where needed), checks it.
delivered()
{
	id=$1
	cfw register "$id" >"$T/register.out" 2>&1 || fail "register [$id]: $(cat "$T/register.out")"
	write_file "$T/body" '{"id":"'"$2"'","uploaded":"2024-01-01T12:00:00.000Z","variants":["https://imagedelivery.net/x/y/public"]}'
	cgi POST "$T/body"
	expect_answer 200 OK
	expect_one_delivery applied 200
	expect_eq "$(image_status "$id")" uploaded "[$id]: status"
	expect_eq "$(last_delivery image_id)" "'$(sql_quote "$id")'" "[$id]: delivery image_id"
	expect_sql "SELECT count(*) FROM hook_runs WHERE image_id = '$(sql_quote "$id")'" 1 \
		"[$id]: one hook run, for this id"
	cfw show "$id" >"$T/show.out" || fail "show [$id] failed"
	expect_sql "SELECT cloudflare_id FROM cloudflare_images WHERE cloudflare_id = '$(sql_quote "$id")'" \
		"$id" "[$id]: stored exactly"
}

delivered 'products/2024/shoe photo.jpg' 'products/2024/shoe photo.jpg'
expect_eq "$(sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$T/show.out")" 'products/2024/shoe photo.jpg' \
	"show prints the path id"
delivered 'fotos/café/été 2024.jpg' 'fotos/caf\u00e9/été 2024.jpg'
delivered "o'brien/it's \"quoted\".jpg" "o'brien/it's \\\"quoted\\\".jpg"
delivered 'a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p' 'a\/b\/c/d/e/f/g/h/i/j/k/l/m/n/o/p'
delivered '...hidden/x..y/.z' '...hidden/x..y/.z'

expect_sql "SELECT count(*) FROM cloudflare_images" 5 "five images, no stray rows"

# A path id that is unsafe is refused by register as by the responder.
for bad in 'products//shoe.jpg' '/products/shoe.jpg' 'products/../shoe.jpg'; do
	cfw register "$bad" >/dev/null 2>&1
	expect_eq $? 2 "register [$bad] exits 2"
done
expect_sql "SELECT count(*) FROM cloudflare_images" 5 "no unsafe id registered"

wait_hook_runners || fail "hook runs still running or due 10 s after the last request"

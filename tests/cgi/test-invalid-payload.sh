#!/bin/sh
# cfimages-webhook(8) REQUEST CONTRACT row 7 and cfimages-webhook(8) PAYLOADS "Validation": valid JSON that is not a payload
# is answered 400 `Invalid payload`: wrong types, a missing, empty, too
# long or unsafe id (control characters, empty, "." or ".." segments, a
# leading "/"), duplicate keys at any depth, a top level that is not an
# object, variants that are not http(s) URLs, times that are not RFC 3339.
# Each refusal is one delivery row (reason invalid_payload) and changes
# nothing else; the image stays pending.
. "$top_srcdir/tests/lib.sh"

init_db abc
UP='"uploaded":"2024-01-01T12:00:00.000Z"'

# refused JSON: the body (exact text, no escapes interpreted) is refused.
refused()
{
	write_file "$T/body" "$1"
	cgi POST "$T/body"
	expect_rejected 400 "Invalid payload" invalid_payload
	expect_eq "$(image_status abc)" pending "request $CGI_N ($1): image untouched"
}

# The top level is an object.
refused '[{"id":"abc",'"$UP"'}]'
refused '"abc"'
refused '42'
refused 'null'
refused 'true'
refused '{}'

# Wrong types.
refused '{"id":123,'"$UP"'}'
refused '{"id":["abc"],'"$UP"'}'
refused '{"id":null,'"$UP"'}'
refused '{"id":"abc","uploaded":123}'
refused '{"id":"abc","uploaded":true}'
refused '{"id":"abc",'"$UP"',"variants":"https://imagedelivery.net/x/abc/public"}'
refused '{"id":"abc",'"$UP"',"variants":[1]}'
refused '{"id":"abc",'"$UP"',"variants":[null]}'
refused '{"id":"abc",'"$UP"',"requireSignedURLs":"true"}'
refused '{"id":"abc",'"$UP"',"requireSignedURLs":1}'
refused '{"id":"abc","draft":"yes"}'
refused '{"id":"abc",'"$UP"',"metadata":"key=value"}'
refused '{"id":"abc",'"$UP"',"metadata":["key"]}'
refused '{"id":"abc",'"$UP"',"meta":42}'
refused '{"id":"abc","error":42}'
refused '{"id":"abc","error":["failed"]}'
refused '{"id":"abc","error":{"message":42}}'

# Missing or empty id; an id with nothing to apply.
refused '{'"$UP"'}'
refused '{"ID":"abc",'"$UP"'}'
refused '{"id":"",'"$UP"'}'
refused '{"id":"abc"}'
refused '{"id":"abc","metadata":{"key":"value"}}'

# Length: 1024 characters (UTF-8) is the limit, not 1024 bytes.
long1025=$(head -c 1025 /dev/zero | tr '\0' 'a')
refused '{"id":"'"$long1025"'",'"$UP"'}'
long1024=$(head -c 1024 /dev/zero | tr '\0' 'a')
write_file "$T/long1024" '{"id":"'"$long1024"'",'"$UP"'}'
cgi POST "$T/long1024"
expect_answer 404 "Image not found"
expect_one_delivery not_found 404
e1024=$(head -c 1024 /dev/zero | sed 's/\x00/é/g')
write_file "$T/e1024" '{"id":"'"$e1024"'",'"$UP"'}'
cgi POST "$T/e1024"
expect_answer 404 "Image not found"
refused '{"id":"'"${e1024}é"'",'"$UP"'}'

# Control characters (escaped, so the JSON itself is valid).
refused '{"id":"a\u0001b",'"$UP"'}'
refused '{"id":"a\u007fb",'"$UP"'}'
refused '{"id":"a\u0000b",'"$UP"'}'
refused '{"id":"a\u001fb",'"$UP"'}'
refused '{"id":"a\nb",'"$UP"'}'
refused '{"id":"abc\t",'"$UP"'}'
refused '{"id":"a\u0080b",'"$UP"'}'

# Path safety: no empty, "." or ".." segment, no leading "/".
for id in .. . a//b /abc abc/ a/../b a/./b ../abc abc/.. / // ./abc '\/abc'; do
	refused '{"id":"'"$id"'",'"$UP"'}'
done

# Duplicate keys, at the top and nested (first wins in cJSON, last in
# many hook languages: the ambiguity is refused).
refused '{"id":"abc","id":"xyz",'"$UP"'}'
refused '{"id":"abc",'"$UP"','"$UP"'}'
refused '{"id":"abc",'"$UP"',"metadata":{"k":1,"k":2}}'
refused '{"id":"abc",'"$UP"',"metadata":{"a":{"k":1,"k":1}}}'
refused '{"id":"abc",'"$UP"',"metadata":{"a":[{"k":1,"k":1}]}}'
refused '{"id":"abc","i\u0064":"xyz",'"$UP"'}'

# variants are http/https URL strings.
for v in 'ftp://imagedelivery.net/x' 'not a url' 'javascript:alert(1)' '' 'https://' \
	'file:///etc/passwd' '//imagedelivery.net/x'; do
	refused '{"id":"abc",'"$UP"',"variants":["'"$v"'"]}'
done

# uploaded and timestamp are RFC 3339.
for t in '2024-01-01 12:00:00' '2024-01-01' 'yesterday' '2024-13-01T00:00:00Z' \
	'2024-01-01T12:00:00' '2024-02-30T00:00:00Z' '2024-01-01T25:00:00Z' '1704110400' ''; do
	refused '{"id":"abc","uploaded":"'"$t"'"}'
	refused '{"id":"abc","error":"failed","timestamp":"'"$t"'"}'
done

# The envelope, job and notification shapes are validated the same way.
refused '{"event":"image.uploaded","image":"abc"}'
refused '{"event":"image.uploaded"}'
refused '{"event":"image.uploaded","image":{"id":"a//b",'"$UP"'}}'
refused '{"event":"image.uploaded","image":{"id":"abc","uploaded":"soon"}}'
refused '{"event":42,"id":"abc",'"$UP"'}'
refused '{"event":"image.uploaded","timestamp":"yesterday","image":{"id":"abc",'"$UP"'}}'
refused '{"event":"image.uploaded","image":{"id":"abc",'"$UP"',"result":"x"}}'
refused '{"id":"abc",'"$UP"',"result":[1]}'
refused '{"id":"abc",'"$UP"',"meta":"x","metadata":{}}'
refused '{"event":"job.completed","job_id":42}'
refused '{"event":"job.completed","job_id":""}'
refused '{"event":"job.completed"}'
refused '{"event":"job.completed","job_id":"abc","result":"done"}'
refused '{"event":"job.failed","job_id":"abc","error":7}'
refused '{"alert_type":"image_notification","data":{"id":"..",'"$UP"'}}'
refused '{"alert_type":"image_notification","data":{"id":"abc","uploaded":7}}'
refused '{"alert_type":42,"data":{"id":"abc",'"$UP"'}}'

# Keys differing only in case are distinct (no duplicate), and unknown
# fields are kept, not refused: this one is applied.
write_file "$T/ok" '{"id":"abc","Id":"other","UPLOADED":"x",'"$UP"',"extra":{"k":[1,2]}}'
cgi POST "$T/ok"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status abc)" uploaded "a valid payload with extra fields is applied"

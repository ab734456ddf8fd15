/*
 * libFuzzer target for the payload path: untrusted body bytes through
 * json_validate(), cJSON and shape recognition.  Any crash, leak, read
 * past the buffer (libFuzzer hands over exactly size bytes, no NUL) or
 * undefined behaviour is a bug.  Also checks the contract of event_parse:
 * an accepted event always has an id, a status and an event name, and a
 * refusal leaves nothing but possibly the id behind, and the JSON-valued
 * fields, copied from the body's text, are each one valid JSON value of
 * the right kind.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *     tests/fuzz/fuzz_event.c src/event.c src/json.c src/util.c -lcjson -lcrypto
 *   ./a.out -max_len=65536 tests/fuzz/corpus/event
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* NULL, or valid JSON starting with open (an object or an array). */
static void check_json_text(const char *text, char open)
{
	if (text != NULL && (text[0] != open || !json_validate(text, strlen(text), NULL)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct event ev;
	const char *why = NULL;
	enum event_result r = event_parse((const char *)data, size, &ev, &why);

	if (why == NULL)
		abort();
	if (r == EVENT_OK && (ev.image_id == NULL || ev.status == NULL || ev.event_name == NULL))
		abort();
	if (r != EVENT_OK && (ev.status != NULL || ev.event_name != NULL || ev.filename != NULL ||
	                      ev.metadata_json != NULL || ev.variants_json != NULL ||
	                      ev.result_json != NULL || ev.error_text != NULL))
		abort();
	if (r != EVENT_BAD_PAYLOAD && r != EVENT_OK && ev.image_id != NULL)
		abort();
	check_json_text(ev.metadata_json, '{');
	check_json_text(ev.variants_json, '[');
	check_json_text(ev.result_json, '{');
	event_free(&ev);
	return 0;
}

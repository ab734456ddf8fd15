/*
 * libFuzzer target for outbound actions: the input is read three ways, as
 * a .webhook file, as a payload template and as the image of the default
 * payload.  Nothing may crash, a parsed action must keep its bounds, and
 * every payload produced must be valid JSON.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "action.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts unless out is one valid JSON text. */
static void check_output(const char *out)
{
	struct json_check info;
	if (out == NULL || !json_validate(out, strlen(out), &info))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct action a;
	struct action_problem probs[8];
	const char *text = (const char *)data;
	cJSON *values;
	char *out = NULL;
	size_t n;

	n = action_parse(text, size, &a, probs, 8);
	if (a.n_headers > ACTION_MAX_HEADERS || a.timeout_seconds < 0 ||
	    a.timeout_seconds > ACTION_TIMEOUT_SECONDS_MAX ||
	    memchr(a.url, '\0', sizeof a.url) == NULL)
		abort();
	for (size_t i = 0; i < n && i < 8; i++)
		if (action_error_text(probs[i].code) == NULL)
			abort();

	values = cJSON_CreateObject();
	cJSON_AddItemToObject(
	    values, "image",
	    cJSON_CreateRaw("{\"id\":\"a\\\"</script>\",\"n\":123456789012345678901,"
	                    "\"m\":{\"k\":[1,\"\\u2028\"]}}"));
	cJSON_AddStringToObject(values, "status", "uploaded\n<");
	cJSON_AddNullToObject(values, "previous_status");
	if (action_render(text, size, values, &out) == ACTION_RENDER_OK)
		check_output(out);
	free(out);
	out = NULL;
	cJSON_Delete(values);

	if (action_default_payload(text, size, "uploaded", NULL, "e\"", "T", &out) ==
	    ACTION_RENDER_OK)
		check_output(out);
	free(out);
	return 0;
}

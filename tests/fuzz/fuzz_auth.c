/*
 * libFuzzer target for src/auth.c: the header parsers and auth_verify().
 *
 * Input layout: one selector byte, then newline-separated fields:
 *
 *   SELECTOR VALUE "\n" ID "\n" TIMESTAMP "\n" BODY
 *
 * Bits 0-5 of SELECTOR choose which signature headers get VALUE
 * (X-Signature, X-Cloudflare-Signature, X-ImgGo-Signature,
 * X-Hub-Signature-256, cf-webhook-auth, Webhook-Signature); bit 6 sets
 * webhook-id to ID and bit 7 webhook-timestamp to TIMESTAMP.  Missing
 * fields are empty.  Besides "never crashes", it checks the presence rule
 * (AUTH_MISSING exactly when no signature header is set) and that a hex
 * signature made by auth_sign_hex() for BODY always verifies, whatever
 * else is present.
 *
 * Build and run:
 *   clang -fsanitize=fuzzer,address -I src -I /usr/include/cjson \
 *       tests/fuzz/fuzz_auth.c src/auth.c src/util.c -lcrypto -o fuzz_auth
 *   ./fuzz_auth -max_total_time=20 tests/fuzz/corpus/auth
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

/* The moment the seeds are signed for, and cfimages-webhook.conf(5)'s default tolerance. */
#define FUZZ_NOW 1614265330
#define FUZZ_TOLERANCE_SECONDS 300
/* Six signature headers, then webhook-id and webhook-timestamp. */
#define FUZZ_SIGNATURE_HEADERS 6
#define FUZZ_BIT_ID (1u << 6)
#define FUZZ_BIT_TIMESTAMP (1u << 7)

/* Copies the next '\n'-terminated field of [*p, end) into a malloc'd string. */
static char *next_field(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n = nl != NULL ? (size_t)(nl - *p) : (size_t)(end - *p);
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	memcpy(s, *p, n);
	s[n] = '\0';
	*p += n + (nl != NULL ? 1 : 0);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char secret0[] = "test-secret";
	static const char secret1[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
	const struct auth_secret secrets[2] = {{secret0, sizeof(secret0) - 1},
	                                       {secret1, sizeof(secret1) - 1}};
	const char **slots[FUZZ_SIGNATURE_HEADERS];
	struct auth_headers h;
	const uint8_t *p, *end = data + size;
	char *value, *id, *ts, hex[65];
	const unsigned char *body;
	size_t body_len, i;
	enum auth_scheme scheme;
	enum auth_result r;
	unsigned sel;

	if (size == 0)
		return 0;
	sel = data[0];
	p = data + 1;
	value = next_field(&p, end);
	id = next_field(&p, end);
	ts = next_field(&p, end);
	body = p;
	body_len = (size_t)(end - p);

	memset(&h, 0, sizeof(h));
	slots[0] = &h.x_signature;
	slots[1] = &h.x_cloudflare_signature;
	slots[2] = &h.x_imggo_signature;
	slots[3] = &h.x_hub_signature_256;
	slots[4] = &h.cf_webhook_auth;
	slots[5] = &h.webhook_signature;
	for (i = 0; i < FUZZ_SIGNATURE_HEADERS; i++)
		if (sel & (1u << i))
			*slots[i] = value;
	if (sel & FUZZ_BIT_ID)
		h.webhook_id = id;
	if (sel & FUZZ_BIT_TIMESTAMP)
		h.webhook_timestamp = ts;

	r = auth_verify(&h, body, body_len, secrets, 2, FUZZ_NOW, FUZZ_TOLERANCE_SECONDS, &scheme);
	if ((r == AUTH_MISSING) != ((sel & 0x3fu) == 0))
		abort();
	if ((r == AUTH_OK) != (scheme != AUTH_SCHEME_NONE))
		abort();

	/* A correct hex signature in a header of its own always verifies. */
	if (auth_sign_hex(&secrets[0], body, body_len, hex, sizeof(hex)) != 0)
		abort();
	h.x_imggo_signature = hex;
	r = auth_verify(&h, body, body_len, secrets, 2, FUZZ_NOW, FUZZ_TOLERANCE_SECONDS, &scheme);
	if (r != AUTH_OK || scheme == AUTH_SCHEME_NONE)
		abort();

	free(value);
	free(id);
	free(ts);
	return 0;
}

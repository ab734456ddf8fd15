-- wrk script of bench/run.sh: POSTs one signed delivery, over and over.
--
-- Environment:
--   BENCH_BODY       file holding the body (sent byte for byte)
--   BENCH_SIGNATURE  the header line `cfimages-webhook sign` printed,
--                    e.g. "X-Signature: 3f5a..."
--   BENCH_REQUESTS   optional: each wrk thread stops after this many
--                    responses (wrk itself only knows durations)
--
-- The body and its signature are the same in every request, so after the
-- first one every delivery is a duplicate: what is measured is the whole
-- path of an authenticated delivery that is verified, parsed, looked up
-- and logged in one committed transaction, without hooks running.

local function slurp(path)
	local f = assert(io.open(path, "rb"), "cannot open BENCH_BODY " .. tostring(path))
	local data = f:read("*a")
	f:close()
	return data
end

local sigline = assert(os.getenv("BENCH_SIGNATURE"), "BENCH_SIGNATURE is not set")
local name, value = sigline:match("^([^:]+):%s*(.-)%s*$")
assert(name, "BENCH_SIGNATURE is not a 'Name: value' line")

wrk.method = "POST"
wrk.body = slurp(os.getenv("BENCH_BODY"))
wrk.headers["Content-Type"] = "application/json"
wrk.headers[name] = value

local limit = tonumber(os.getenv("BENCH_REQUESTS") or "")
if limit then
	-- Each wrk thread runs this file in its own Lua state: the counter is
	-- per thread.  Defined only when asked, since a response() callback
	-- makes wrk parse every answer in Lua.
	local seen = 0
	function response(status, headers, body)
		seen = seen + 1
		if seen >= limit then
			wrk.thread:stop()
		end
	end
end

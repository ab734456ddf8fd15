-- wrk script of bench/postgresql.sh: POSTs signed deliveries that each
-- move a different registered image from pending to uploaded (a fresh
-- transition: the whole write path, hooks queued), never the same twice.
--
-- Environment:
--   BENCH_BODIES   a file prefix: thread N reads BENCH_BODIES.N, one line
--                  per delivery: "HEXSIGNATURE<TAB>BODY"
--
-- Each wrk thread runs this file in its own Lua state; threads are
-- numbered in setup() so that each reads its own file.  A thread stops
-- once its file is used up.

local counter = 0

function setup(thread)
	thread:set("index", counter)
	counter = counter + 1
end

local lines = {}
local next_line = 1

function init(args)
	local path = os.getenv("BENCH_BODIES") .. "." .. tostring(index)
	local f = assert(io.open(path, "rb"), "cannot open " .. path)
	for line in f:lines() do
		local sig, body = line:match("^(%x+)\t(.*)$")
		if sig then
			lines[#lines + 1] = {sig, body}
		end
	end
	f:close()
end

function request()
	local item = lines[next_line]
	if item == nil then
		item = lines[#lines] -- exhausted: a duplicate, until stop() takes effect
	end
	next_line = next_line + 1
	return wrk.format("POST", nil, {
		["Content-Type"] = "application/json",
		["X-Signature"] = item[1],
	}, item[2])
end

function response(status, headers, body)
	if next_line > #lines then
		wrk.thread:stop()
	end
end

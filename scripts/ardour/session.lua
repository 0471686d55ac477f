-- Pianola in Ardour 7 (ardour7-lua, "None (Dummy)" backend): a session with one audio track fed
-- a dev-set song as a region, Pianola (VST3) on it, and a MIDI logger after it. Capture mode: a
-- capture pass, locate to 0, a playback pass; Live mode ($PIANOLA_MODE=live): one pass. The note
-- events the logger saw are written to $PIANOLA_RESULT.
-- Driven by scripts/ardour_test.sh, which sets the environment below.

local function env (k, d) local v = os.getenv (k); if v == nil or v == "" then return d end; return v end
local WAV      = env ("PIANOLA_WAV", nil)
local DIR      = env ("PIANOLA_SESSION_DIR", nil)
local RESULT   = env ("PIANOLA_RESULT", nil)
local SECONDS  = tonumber (env ("PIANOLA_SECONDS", "12"))
local BPM      = tonumber (env ("PIANOLA_BPM", "116"))
local WAIT     = tonumber (env ("PIANOLA_WAIT", "6"))
local MODE     = env ("PIANOLA_MODE", "capture")
local RATE     = 44100

local function fail (msg)
	print ("FAIL: " .. msg)
	local f = io.open (RESULT, "w"); if f then f:write ("FAIL " .. msg .. "\n"); f:close () end
	if Session then close_session () end
	os.exit (1)
end
local function sleep (s) ARDOUR.LuaAPI.usleep (math.floor (s * 1e6)) end

-- The song: 16-bit PCM WAV, downmixed to mono, the first SECONDS.
local function read_wav (path, seconds)
	local f = io.open (path, "rb"); if not f then fail ("cannot open " .. path) end
	local d = f:read ("a"); f:close ()
	if d:sub (1, 4) ~= "RIFF" or d:sub (9, 12) ~= "WAVE" then fail (path .. " is not a WAV file") end
	local p, ch, rate, bits, data, len = 13
	while p + 8 <= #d do
		local id, size = d:sub (p, p + 3), string.unpack ("<I4", d, p + 4)
		if id == "fmt " then
			local fmt
			fmt, ch, rate = string.unpack ("<I2I2I4", d, p + 8)
			bits = string.unpack ("<I2", d, p + 22)
			if fmt ~= 1 or bits ~= 16 then fail (path .. ": only 16-bit PCM is read here") end
		elseif id == "data" then data, len = p + 8, math.min (size, #d - p - 7); break end
		p = p + 8 + size + (size % 2)
	end
	if not data or not ch then fail (path .. ": no fmt/data chunk") end
	if rate ~= RATE then fail (path .. string.format (": %d Hz, the test expects %d", rate, RATE)) end
	local frames = math.min (len // (2 * ch), math.floor (seconds * rate))
	local out, fmt, q = {}, "<" .. string.rep ("i2", ch), data
	for i = 1, frames do
		local s = 0
		local v = table.pack (string.unpack (fmt, d, q))
		for c = 1, ch do s = s + v[c] end
		out[i] = s / (ch * 32768)
		q = q + 2 * ch
	end
	return out
end

local song = read_wav (WAV, SECONDS + 1)
print (string.format ("song: %d samples (%.1f s) from %s", #song, #song / RATE, WAV))

-- Engine and session
local backend = AudioEngine:set_backend ("None (Dummy)", "", "")
if not backend then fail ("no \"None (Dummy)\" backend") end
backend:set_sample_rate (RATE)
backend:set_buffer_size (tonumber (env ("PIANOLA_BLOCK", "1024")))
if AudioEngine:start (false) ~= 0 then fail ("the Dummy engine did not start") end
Session = create_session (DIR, "pianola", RATE)
print (string.format ("engine: %d Hz, %d samples per cycle", Session:nominal_sample_rate (), Session:get_block_size ()))
if not Session then fail ("cannot create a session in " .. DIR) end

local tm = Temporal.TempoMap.fetch_writable ()
tm:set_tempo (Temporal.Tempo (BPM, BPM, 4), Temporal.timepos_t (0))
Temporal.TempoMap.update (tm)

local tl = Session:new_audio_track (1, 2, nil, 1, "Song", ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, true)
local track = tl:front ()
if not track then fail ("cannot add an audio track") end
track:set_strict_io (false)

-- The song as a region at timeline 0, as a producer's track has it: the feed script plays the
-- preloaded samples once into a bounce, the region goes on the playlist and the feed goes away. The
-- disk reader then reads the song ahead by the latency of what follows it (Ardour's delay
-- compensation), as for any imported file.
local feed = ARDOUR.LuaAPI.new_luaproc (Session, "Pianola Test Feed")
if feed:isnil () then fail ("the feed script (Pianola Test Feed) is not installed") end
track:add_processor_by_index (feed, 0, nil, true)
local shm = feed:to_insert ():plugin (0):to_luaproc ():shmem ()
local arr = shm:to_float (4):array ()
local song_len = #song
for k = 1, song_len do arr[k] = song[k] end
shm:atomic_set_int (0, song_len)
song = nil
collectgarbage ()
shm:atomic_set_int (2, 0)
shm:atomic_set_int (1, 1)
local region = track:bounce_range (0, song_len, ARDOUR.InterThreadInfo (), feed, true, "song")
if region:isnil () then fail ("bouncing the song into a region failed") end
track:playlist ():add_region (region, Temporal.timepos_t (0), 1, false)
track:remove_processor (feed, nil, true)
print (string.format ("region: %s at %d, %d samples", region:name (), region:position ():samples (), region:length ():samples ()))

local pianola = ARDOUR.LuaAPI.new_plugin (Session, "Pianola", ARDOUR.PluginType.VST3, "")
if pianola:isnil () then fail ("Pianola (VST3) not found: the plugin cache has no entry for it") end
track:add_processor_by_index (pianola, 0, nil, true)
if MODE == "live" then
	-- Mode (parameter 0) to Live before the transport rolls, as a user would in the panel.
	ARDOUR.LuaAPI.set_processor_param (pianola, 0, 1)
end

local log = ARDOUR.LuaAPI.new_luaproc (Session, "Pianola Test MIDI Log")
if log:isnil () then fail ("the logger script (Pianola Test MIDI Log) is not installed") end
track:add_processor_by_index (log, 1, nil, true)

local chain = {}
local i = 0
while true do
	local p = track:nth_plugin (i)
	if p:isnil () then break end
	local pi = p:to_insert ()
	chain[#chain + 1] = string.format ("%s [%s -> %s]", p:display_name (), pi:natural_input_streams ():n_total (), pi:natural_output_streams ():n_total ())
	i = i + 1
end
print ("chain: " .. table.concat (chain, " | "))
local all = {}
i = 0
while true do
	local p = track:nth_processor (i)
	if p:isnil () then break end
	all[#all + 1] = p:display_name () .. (p:active () and "" or " (inactive)")
	i = i + 1
end
print ("processors: " .. table.concat (all, " | "))

local logshm = log:to_insert ():plugin (0):to_luaproc ():shmem ()
local function events () return logshm:atomic_get_int (0) end

local function roll (seconds)
	Session:request_locate (0, false, ARDOUR.LocateTransportDisposition.MustStop, ARDOUR.TransportRequestSource.TRS_UI)
	sleep (0.5)
	Session:request_roll (ARDOUR.TransportRequestSource.TRS_UI)
	sleep (seconds)
	Session:request_stop (false, false, ARDOUR.TransportRequestSource.TRS_UI)
	sleep (0.5)
end

sleep (2) -- the worker loads the model
local after_capture = 0
if MODE == "live" then
	-- One pass: Live plays while it listens.
	roll (SECONDS)
else
	roll (SECONDS)
	after_capture = events ()
	print (string.format ("capture pass: %d note events, transport at %d, audio peak after Pianola %.3f", after_capture, Session:transport_sample (), logshm:to_float (2):array ()[1]))
	sleep (WAIT) -- the worker transcribes and arranges what it captured
	roll (SECONDS)
end
local total = events ()
local seen = logshm:atomic_get_int (1)
local latency = pianola:to_insert ():signal_latency ()
print (string.format ("%s pass: %d note events (%d seen), Pianola's latency in Ardour %d samples", MODE == "live" and "live" or "playback", total - after_capture, seen - after_capture, latency))

local f = io.open (RESULT, "w")
f:write (string.format ("CAPTURE %d\nLATENCY %d\n", after_capture, latency))
local buf = logshm:to_int (3):array ()
for e = 0, total - 1 do
	f:write (string.format ("EV %d %d %d %d\n", buf[e * 4 + 1], buf[e * 4 + 2], buf[e * 4 + 3], buf[e * 4 + 4]))
end
f:write (string.format ("DROPPED %d\nEND\n", seen - total))
f:close ()

Session:save_state ("", false, false, false, false, false)
close_session ()

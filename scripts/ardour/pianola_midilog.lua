ardour {
	["type"]    = "dsp",
	name        = "Pianola Test MIDI Log",
	category    = "Utility",
	license     = "MIT",
	author      = "Pianola",
	description = [[Test helper: records the note and sustain-pedal (CC64) events it receives into shared memory for the session script; passes audio and MIDI through]]
}

-- shmem layout: int[0] = events stored, int[1] = events seen (incl. dropped);
-- float[2] = peak of the audio it passes (is the song reaching the track?);
-- then per event 4 ints: status byte, key, velocity, sample position (transport sample + offset)
local MAXEV = 20000

function dsp_ioconfig ()
	return { { midi_in = 1, midi_out = 1, audio_in = -1, audio_out = -1 } }
end

function dsp_init (rate)
	self:shmem ():allocate (3 + 4 * MAXEV)
	self:shmem ():atomic_set_int (0, 0)
	self:shmem ():atomic_set_int (1, 0)
	self:shmem ():to_float (2):array ()[1] = 0
end

function dsp_configure (ins, outs)
	n_out = outs
end

function dsp_runmap (bufs, in_map, out_map, n_samples, offset)
	ARDOUR.DSP.process_map (bufs, n_out, in_map, out_map, n_samples, offset)
	local ab = in_map:get (ARDOUR.DataType ("audio"), 0)
	if ab ~= ARDOUR.ChanMapping.Invalid then
		local peak = ARDOUR.DSP.compute_peak (bufs:get_audio (ab):data (offset), n_samples, 0)
		local pk = self:shmem ():to_float (2):array ()
		if peak > pk[1] then pk[1] = peak end
	end
	local ib = in_map:get (ARDOUR.DataType ("midi"), 0)
	if ib == ARDOUR.ChanMapping.Invalid then return end
	local shm = self:shmem ()
	local stored = shm:atomic_get_int (0)
	local seen = shm:atomic_get_int (1)
	local buf = shm:to_int (3):array ()
	local pos = Session:transport_sample ()
	for _, e in pairs (bufs:get_midi (ib):table ()) do
		local ev = e:buffer ():array ()
		local st = ev[1] & 0xf0
		if e:size () >= 3 and (st == 0x80 or st == 0x90 or (st == 0xb0 and ev[2] == 64)) then
			seen = seen + 1
			if stored < MAXEV then
				local b = stored * 4
				buf[b + 1] = ev[1]
				buf[b + 2] = ev[2]
				buf[b + 3] = ev[3]
				buf[b + 4] = pos + e:time ()
				stored = stored + 1
			end
		end
	end
	shm:atomic_set_int (1, seen)
	shm:atomic_set_int (0, stored)
end

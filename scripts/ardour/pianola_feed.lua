ardour {
	["type"]    = "dsp",
	name        = "Pianola Test Feed",
	category    = "Utility",
	license     = "MIT",
	author      = "Pianola",
	description = [[Test helper: plays audio preloaded into shared memory by the session script, while the session script has it armed (the DSP interpreter cannot query the transport)]]
}

-- shmem layout: int[0] = samples loaded; int[1] = armed (1) or not (0); int[2] = read position
-- (the session script sets it to 0 when it arms the feed for a pass); float[3..] = mono samples.
local CAPACITY = 44100 * 40

function dsp_ioconfig ()
	return { { audio_in = 1, audio_out = 1 } }
end

function dsp_init (rate)
	self:shmem ():allocate (CAPACITY + 4)
	for i = 0, 3 do self:shmem ():atomic_set_int (i, 0) end
end

function dsp_run (ins, outs, n_samples)
	local shm = self:shmem ()
	shm:atomic_set_int (3, shm:atomic_get_int (3) + 1)
	local out = outs[1]:array ()
	local n = shm:atomic_get_int (0)
	if shm:atomic_get_int (1) == 0 or n == 0 then
		for i = 1, n_samples do out[i] = 0 end
		return
	end
	local data = shm:to_float (4):array ()
	local pos = shm:atomic_get_int (2)
	for i = 1, n_samples do
		local k = pos + i
		if k <= n then out[i] = data[k] else out[i] = 0 end
	end
	shm:atomic_set_int (2, pos + n_samples)
end

#include "transports/redis/redis_streams_scripts.hpp"

namespace mailroom {

// KEYS: 1 stream, 2 retry set.
// ARGV: 1 group, 2 consumer, 3 room, 4 now (unix ms), 5 recover ('1'/'0'),
//       6 min idle ms, 7 XAUTOCLAIM cursor, 8 max deliveries (0: none).
// Returns {cursor, {{kind, id, deliveries, fields}, ...}} with
// kind 'c' taken over, 'x' taken over but over max deliveries, 'r' due
// retry. The delivery count of a claimed entry is read back with XPENDING
// after the claim has bumped it.
//
// New entries are not read here but by a plain XREADGROUP after the script:
// passing a large batch through Lua tables costs the server about twice
// the read itself.
//
// XAUTOCLAIM cannot skip entries: a scheduled retry whose delay outlasts
// min idle is claimed too, then handed back untouched (its count restored
// with RETRYCOUNT) to wait for its due time.
const char* const redis_streams_scripts::poll = R"lua(
local stream, retry = KEYS[1], KEYS[2]
local group, consumer = ARGV[1], ARGV[2]
local room, now = tonumber(ARGV[3]), tonumber(ARGV[4])
local cursor = ARGV[7]
local out = {}

local function deliveries(id)
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  if p[1] then
    return tonumber(p[1][4])
  end
  return 1
end

local function forget(id)
  redis.call('ZREM', retry, id)
end

if ARGV[5] == '1' and room > 0 then
  local r = redis.call('XAUTOCLAIM', stream, group, consumer, ARGV[6], cursor,
                       'COUNT', room)
  cursor = r[1]
  if r[3] then
    for _, id in ipairs(r[3]) do
      forget(id)
    end
  end
  local cap = tonumber(ARGV[8])
  for _, e in ipairs(r[2]) do
    local id = e[1]
    if not e[2] then
      -- Deleted from the stream while pending (Redis < 7 reports it so).
      redis.call('XACK', stream, group, id)
      forget(id)
    else
      local n = deliveries(id)
      local due = redis.call('ZSCORE', retry, id)
      if due and tonumber(due) > now then
        redis.call('XCLAIM', stream, group, consumer, 0, id, 'RETRYCOUNT', n - 1, 'JUSTID')
      else
        local kind = 'c'
        if due then
          -- A due retry reached by recovery first: a redelivery all the same.
          redis.call('ZREM', retry, id)
          kind = 'r'
        elseif cap > 0 and n > cap then
          kind = 'x'
        end
        out[#out + 1] = {kind, id, n, e[2]}
        room = room - 1
      end
    end
  end
end

if room > 0 then
  local ids = redis.call('ZRANGEBYSCORE', retry, '-inf', now, 'LIMIT', 0, room)
  for _, id in ipairs(ids) do
    redis.call('ZREM', retry, id)
    local c = redis.call('XCLAIM', stream, group, consumer, 0, id)
    local e = c[1]
    if e and e[2] then
      out[#out + 1] = {'r', id, deliveries(id), e[2]}
      room = room - 1
    end
    -- Else acknowledged (or deleted) meanwhile: nothing left to retry.
  end
end

return {cursor, out}
)lua";

// KEYS: 1 stream, 2 retry set.
// ARGV: 1 group, 2 entry id, 3 consumer, 4 due time (unix ms), 5 delivery
//       count of the delivery being nacked.
// Returns 1 when scheduled, 0 when the entry is no longer pending, another
// consumer took it over, or a later delivery of it (recovery gave it to this
// consumer again) holds it: that delivery owns it now and settles it, as a
// stale receipt is ignored elsewhere. Resetting the idle time (XCLAIM
// JUSTID, which keeps the delivery count) keeps recovery off an entry that
// waits for its retry.
const char* const redis_streams_scripts::nack = R"lua(
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if not p[1] or p[1][2] ~= ARGV[3] or p[1][4] ~= tonumber(ARGV[5]) then
  return 0
end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
return 1
)lua";

// KEYS: 1 stream, 2 retry set, 3 dead-letter stream, 4 this entry's
//       written marker.
// ARGV: 1 group, 2 entry id, 3 consumer, 4 delivery count of the delivery
//       being dead-lettered, 5 marker ttl ms, 6.. field/value pairs of the
//       dead-letter entry.
// Returns the dead-letter entry id; or, when the entry is no longer pending,
// another consumer took it over or a later delivery holds it, the marker's
// value if this very
// delivery wrote the record (the reply to that call was lost and it is
// being repeated), else nil (another delivery settled it; writing again
// would duplicate the record).
// A failed XADD raises and ends the script before XACK: scripts are not
// rolled back, so the order of the calls is the guarantee.
const char* const redis_streams_scripts::dead_letter = R"lua(
local delivery = ARGV[3] .. '/' .. ARGV[4]
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if not p[1] or p[1][2] ~= ARGV[3] or p[1][4] ~= tonumber(ARGV[4]) then
  if redis.call('GET', KEYS[4]) == delivery then
    return delivery
  end
  return false
end
local at = redis.call('XADD', KEYS[3], '*', unpack(ARGV, 6))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('SET', KEYS[4], delivery, 'PX', ARGV[5])
return at
)lua";

// KEYS: 1 stream. ARGV: 1 group, 2 consumer.
// Returns 1 when deleted, 0 when the consumer still holds pending entries
// (deleting it would drop them from the pending entries list).
const char* const redis_streams_scripts::release_consumer = R"lua(
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if p[1] then
  return 0
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
)lua";

// KEYS: 1 stream. ARGV: 1 group, 2 consumer, 3.. entry ids.
// Resets the idle time of every id still pending to this consumer (XCLAIM
// JUSTID: the delivery count stays), so recovery elsewhere does not take over
// an entry the engine still holds. Returns the 0-based positions of the ids
// that are no longer this consumer's (acked, or taken over).
const char* const redis_streams_scripts::extend = R"lua(
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local lost = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  if p[1] and p[1][2] == consumer then
    redis.call('XCLAIM', stream, group, consumer, 0, id, 'JUSTID')
  else
    lost[#lost + 1] = i - 3
  end
end
return lost
)lua";

} // namespace mailroom

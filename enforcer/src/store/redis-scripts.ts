/**
 * The Redis store's Lua scripts, loaded once per connection and called by their SHA (ioredis's
 * `defineCommand`: EVALSHA, with EVAL on a connection that has not loaded them yet or after NOSCRIPT).
 * Kept as strings in a module, not `.lua` files, so the built `dist/` carries them too.
 *
 * `CONSUME` mirrors `decision/token-bucket.ts` (one token, EPSILON 1e-6, refill `elapsed * rate / 1000`
 * capped at the burst, a clock that went back refills nothing) and `decision/quota.ts` (allowed iff
 * `used + cost <= limit + granted`) operation for operation, so both stores compute the same doubles;
 * the contract suite (store-contract.ts) runs every scenario against both. Every expiry is a duration
 * the caller computed from the decision's time (PEXPIRE / PX, never PEXPIREAT): see docs/counters.md.
 */

/** Which of a decision's optional keys are present (its `parts`: their sum). */
export const CONSUME_PARTS = Object.freeze({ bucket: 1, quota: 2, day: 4, alerts: 8 });

/**
 * Lua: `whole(x)`, the exact decimal digits of a whole number, for CONSUME's reply (LONG64 and EXACT
 * with it). Apart, so that a test can run it with every path taken.
 */
export const WHOLE = `
-- %d is a C long: 64 bits on 64-bit Linux, 32 on some builds. whole() writes any whole number exactly:
-- beyond a 32-bit long as two %d parts (exact below 2^53), and beyond that with %.0f (slower).
local LONG64 = string.format('%d', 2^40) == '1099511627776'
local EXACT = 9007199254740992
local function whole(x)
  if x > -2147483648 and x < 2147483648 then return string.format('%d', x) end
  if not (x > -EXACT and x < EXACT) then return string.format('%.0f', x) end
  local sign = ''
  if x < 0 then sign = '-'; x = -x end
  -- Below 2^53, x / 1e9 never rounds up to the next whole number: x is at least 1e-9 below it (in units
  -- of 1e9), more than half the spacing of doubles there (at most 2^-30). So 0 <= lo < 1e9.
  local hi = math.floor(x / 1e9)
  local lo = x - hi * 1e9
  return string.format('%s%d%09d', sign, hi, lo)
end
`;

/**
 * Decisions in order, each atomically (the whole call is: Redis runs one script at a time), so that
 * the decisions an enforcer makes in one turn of its event loop share one round trip. A single
 * decision is a batch of one. KEYS: per decision, only those present, in this order: the bucket, the
 * quota, the day's month hash, the quota's alert set. ARGV[1], one JSON array (cjson decodes it in C;
 * as separate arguments, each cost Redis and the client more than the script's own work): the number of
 * decisions; then, per decision, ten values: parts ({@link CONSUME_PARTS}), now (ms), rate, burst, quota
 * limit, cost, quota TTL (ms), day hash TTL (ms) (these three strings: Redis takes them as HINCRBY's
 * and PEXPIRE's arguments as they are), the day's field ('-' for none), the number of alert thresholds;
 * then the thresholds (percent). No figure may be NaN or infinite (JSON has neither: the store refuses
 * such a decision before it is sent). The reply, one string of integers separated by spaces (cheaper to
 * send and read than an array): per decision, in order, seven integers (read by redis-store.ts's `consumeResults`), denied (0 none,
 * 1 throttle, 2 quota), bucket remaining, bucket retry-after ms, bucket full-in ms, quota used, quota
 * remaining, the number of thresholds crossed; then those thresholds. Every number the script formats is whole, written with all
 * its digits (`whole`, without `%d`'s limit to a C long), so the reply is exact. A later
 * decision in a batch sees what the earlier ones did (the same key twice is counted twice).
 *
 * Layout: the bucket is a string `"<tokens> <updatedAt>"` (%.17g, exact doubles) expiring when full; the
 * quota a hash `{used, granted}` expiring after its period (with a margin), its TTL set when it is
 * created; the days a hash per month (`dayHashOf`: field `DD`, HINCRBY) whose TTL, on each day's first
 * count, becomes the day hash TTL if that is later (a max: a day counted late never shortens it); the
 * alert set a set of thresholds.
 */
export const CONSUME = `
local EPS = 1e-6
${WHOLE}
local out = {}
local k = 1
local A = cjson.decode(ARGV[1])
local o = 1
for _ = 1, A[1] do
  local parts, now, costArg, quotaTtl, dayTtl, dayField, nThresholds =
    A[o + 1], A[o + 2], A[o + 6], A[o + 7], A[o + 8], A[o + 9], A[o + 10]
  local cost = tonumber(costArg)
  local bucketKey, quotaKey, dayHash, alertsKey
  if parts % 2 == 1 then bucketKey = KEYS[k]; k = k + 1 end
  if parts % 4 >= 2 then quotaKey = KEYS[k]; k = k + 1 end
  if parts % 8 >= 4 then dayHash = KEYS[k]; k = k + 1 end
  if parts >= 8 then alertsKey = KEYS[k]; k = k + 1 end

  local bucketAllowed = true
  local tokens, updatedAt, rate, burst
  if bucketKey then
    rate = A[o + 3]
    burst = A[o + 4]
    local stored = redis.call('GET', bucketKey)
    local space = stored and string.find(stored, ' ', 1, true)
    if space then
      tokens = tonumber(string.sub(stored, 1, space - 1))
      updatedAt = tonumber(string.sub(stored, space + 1))
      -- A corrupt state fails towards an empty bucket, which refills, as in token-bucket.ts.
      if not tokens or not (tokens >= 0) then tokens = 0 end
      if not updatedAt or updatedAt ~= updatedAt or updatedAt == math.huge or updatedAt == -math.huge then
        updatedAt = now
      end
      local elapsed = now - updatedAt
      if elapsed > 0 then
        tokens = tokens + (elapsed * rate) / 1000
        updatedAt = now
      end
      if tokens > burst then tokens = burst end
    else
      tokens = burst
      updatedAt = now
    end
    bucketAllowed = tokens + EPS >= 1
  end

  local quotaAllowed = true
  local used, granted, limit = 0, 0, 0
  local quotaExists = false
  if quotaKey then
    limit = A[o + 5]
    local v = redis.call('HMGET', quotaKey, 'used', 'granted')
    if v[1] then used = tonumber(v[1]) or 0; quotaExists = true end
    if v[2] then granted = tonumber(v[2]) or 0; quotaExists = true end
    quotaAllowed = used + cost <= limit + granted and cost >= 0
  end

  local denied = 0
  if not bucketAllowed then denied = 1 elseif not quotaAllowed then denied = 2 end

  local bucketRemaining, retryAfter, fullIn = 0, 0, 0
  if bucketKey then
    if denied == 0 then
      tokens = tokens - 1
      if tokens < 0 then tokens = 0 end
    end
    local deficit = burst - tokens
    if deficit > EPS then fullIn = math.ceil((deficit * 1000) / rate) end
    if not bucketAllowed then retryAfter = math.ceil(((1 - tokens) * 1000) / rate) end
    bucketRemaining = math.floor(tokens + EPS)
    if denied == 0 then
      local ttl = fullIn
      if ttl < 1 then ttl = 1 end
      redis.call('SET', bucketKey, string.format('%.17g %.17g', tokens, updatedAt), 'PX', whole(ttl))
    end
  end

  if denied == 0 then
    if quotaKey then
      used = redis.call('HINCRBY', quotaKey, 'used', costArg)
      if not quotaExists then redis.call('PEXPIRE', quotaKey, quotaTtl) end
    end
    if dayHash and cost > 0 then
      local n = redis.call('HINCRBY', dayHash, dayField, costArg)
      -- A day's first count: the hash lives at least until this day's month is past its retention.
      -- PTTL is -1 for a hash just created (no TTL yet), so this sets it then too.
      if n == cost and redis.call('PTTL', dayHash) < tonumber(dayTtl) then
        redis.call('PEXPIRE', dayHash, dayTtl)
      end
    end
  end

  local quotaRemaining = 0
  if quotaKey then
    quotaRemaining = limit + granted - used
    if quotaRemaining < 0 then quotaRemaining = 0 end
  end

  local crossed = {}
  if alertsKey and quotaKey and used > 0 then
    local allowance = limit + granted
    for i = o + 11, o + 10 + nThresholds do
      local t = A[i]
      if used * 100 >= t * allowance and redis.call('SADD', alertsKey, t) == 1 then
        redis.call('PEXPIRE', alertsKey, quotaTtl)
        crossed[#crossed + 1] = t
      end
    end
  end
  -- denied, bucketRemaining (at most the burst) and #crossed are small; the other four may not be.
  if LONG64 and retryAfter < EXACT and fullIn < EXACT and used < EXACT and used > -EXACT
      and quotaRemaining < EXACT then
    out[#out + 1] = string.format('%d %d %d %d %d %d %d', denied, bucketRemaining, retryAfter, fullIn, used,
      quotaRemaining, #crossed)
  else
    out[#out + 1] = string.format('%d %d %s %s %s %s %d', denied, bucketRemaining, whole(retryAfter),
      whole(fullIn), whole(used), whole(quotaRemaining), #crossed)
  end
  for i = 1, #crossed do out[#out + 1] = string.format('%d', crossed[i]) end
  o = o + 10 + nThresholds
end
return table.concat(out, ' ')
`;

/**
 * One adjustment, exactly once per counter. KEYS: the quota, the adjustment's marker. ARGV: amount,
 * TTL (ms). Sets the marker if absent (holding the amount) and only then adds the amount to the quota's
 * `granted`; both expire with the counter. Returns 1 when applied now, 0 when it had been.
 */
export const ADJUST = `
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
local existed = redis.call('EXISTS', KEYS[1])
redis.call('HINCRBY', KEYS[1], 'granted', ARGV[1])
if existed == 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`;

/**
 * Adds what was counted elsewhere (a local store while Redis was away) to one field of a counter's hash
 * (a quota's `used`, a day of a month's hash). KEYS: the hash. ARGV: the field, the amount, the TTL (ms).
 * The TTL is set if it is later than the hash's (or the hash has none): an expiry only ever moves later.
 * Returns the new value.
 */
export const ADD = `
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return n
`;

#include "stores/memory/memory_idempotency_store.hpp"

#include <algorithm>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace mailroom {

namespace {

using rep = clock::duration::rep;

constexpr std::uint32_t no_index = std::numeric_limits<std::uint32_t>::max();
constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();
// Set in a FIFO item's index when its entry holds memory to give back at expiry.
// Without it, expiry frees the entry without reading it: a cache miss saved.
constexpr std::uint32_t cleanup_bit = 1u << 31;
constexpr std::uint32_t index_bits = cleanup_bit - 1;
constexpr std::uint32_t max_entries = cleanup_bit - 1;
constexpr unsigned chunk_bits = 10;
constexpr std::uint32_t chunk_size = 1u << chunk_bits;
constexpr unsigned min_table_bits = 4;
// A key or result buffer up to this size stays with a freed entry, so keys such as
// UUIDs do not allocate on every claim; larger ones are returned to the allocator.
constexpr std::size_t kept_capacity = 64;
// A FIFO is compacted once it holds this many more stale items than live ones:
// the constant keeps small FIFOs from compacting on every move.
constexpr std::size_t stale_slack = 256;
constexpr std::uint64_t min_ring = 16;
// Items pruned per call beyond twice the batch, so a lightly used shard drains too.
constexpr std::size_t prune_slack = 32;
// Memory latency is hundreds of nanoseconds, so prefetches are issued this many
// items ahead: slot lines first, then (once the slot is in) the entry it names.
constexpr std::size_t slot_ahead = 32;
constexpr std::size_t entry_ahead = 16;
constexpr std::size_t prune_ahead = 16;

// Both halves are used (tag and shard), so finish std::hash with a full-width mix.
std::uint64_t hash_key(std::string_view key) {
  std::uint64_t h = std::hash<std::string_view>{}(key);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

std::uint32_t tag_of(std::uint64_t hash) {
  return static_cast<std::uint32_t>(hash >> 32);
}

rep expiry(rep now, std::chrono::milliseconds ttl) {
  const rep d = std::chrono::duration_cast<clock::duration>(ttl).count();
  if (d > 0 && now > std::numeric_limits<rep>::max() - d) {
    return std::numeric_limits<rep>::max();
  }
  return now + d;
}

void prefetch(const void* p) {
  __builtin_prefetch(p, 1, 3);
}

void drop_buffer(std::string& s) noexcept {
  if (s.capacity() > kept_capacity) {
    std::string().swap(s);
  } else {
    s.clear();
  }
}

// Grows `v`'s capacity geometrically to at least `n`.
template <class T> void make_room(std::vector<T>& v, std::size_t n) {
  if (v.capacity() < n) {
    v.reserve(std::max(n, v.capacity() * 2));
  }
}

// Scratch for grouping a batch by shard, reused across calls of one thread.
struct batch_scratch {
  std::vector<std::uint64_t> hashes;
  std::vector<std::uint32_t> order;
  std::vector<std::uint32_t> starts;
  std::vector<std::uint32_t> busy;
};

} // namespace

struct alignas(64) memory_idempotency_store::shard {
  // One key. Hot fields only: the result of a completed key sits in `results`, so
  // an entry is one cache line.
  struct alignas(64) entry {
    std::string key;
    rep expires = 0;
    fencing_token token = 0;
    std::uint32_t tag = 0;
    std::uint32_t fifo = 0; // the FIFO holding its item
    std::uint32_t pos = 0;  // low bits of its item's FIFO sequence number
    bool done = false;
    bool has_result = false;
  };

  struct slot {
    std::uint32_t tag;
    std::uint32_t index; // no_index: empty
  };

  // The tag rides along so expiry can find the slot without reading the entry.
  struct item {
    rep expires;
    std::uint32_t index; // entry index, maybe | cleanup_bit; no_index: stale
    std::uint32_t tag;
  };

  // Entries of one TTL in expiry order. Items are addressed by a sequence number
  // that never changes while the item lives, so resizing the ring does not have
  // to touch the entries that point at their items.
  struct fifo {
    std::chrono::milliseconds ttl{0};
    std::unique_ptr<item[]> ring;
    std::uint64_t capacity = 0;
    std::uint64_t head = 0;
    std::uint64_t tail = 0;
    std::size_t live = 0;

    item& at(std::uint64_t seq) const { return ring[seq & (capacity - 1)]; }
    std::uint64_t size() const { return tail - head; }
  };

  std::mutex mutex;
  rep last_now = std::numeric_limits<rep>::min();

  std::unique_ptr<slot[]> slots;
  std::size_t mask = 0;
  unsigned shift = 32;
  std::size_t count = 0;
  std::size_t grow_at = 0;

  std::vector<std::unique_ptr<entry[]>> chunks;
  std::vector<std::unique_ptr<std::string[]>> results;
  std::uint32_t allocated = 0;
  // Kept apart from the entries so that freeing one does not have to touch it;
  // LIFO, so a batch knows which entries it will reuse and can prefetch them.
  std::vector<std::uint32_t> free_list;

  std::vector<fifo> fifos;

  shard() { resize_table(min_table_bits); }

  entry& entry_at(std::uint32_t i) const {
    return chunks[i >> chunk_bits][i & (chunk_size - 1)];
  }

  // Only for an entry with `has_result`, whose chunk of results exists.
  std::string& result_at(std::uint32_t i) const {
    return results[i >> chunk_bits][i & (chunk_size - 1)];
  }

  std::string& make_result(std::uint32_t i) {
    auto& r = results[i >> chunk_bits];
    if (!r) {
      r = std::make_unique<std::string[]>(chunk_size);
    }
    return r[i & (chunk_size - 1)];
  }

  std::size_t home(std::uint32_t tag) const {
    // Shift in 64 bits so a 2^32-slot table (shift 0) stays defined.
    return static_cast<std::size_t>(static_cast<std::uint64_t>(tag) >> shift);
  }

  void resize_table(unsigned bits) {
    const std::size_t capacity = std::size_t{1} << bits;
    auto fresh = std::make_unique<slot[]>(capacity);
    std::fill_n(fresh.get(), capacity, slot{0, no_index});
    const std::size_t old_capacity = slots ? mask + 1 : 0;
    std::unique_ptr<slot[]> old = std::move(slots);
    slots = std::move(fresh);
    mask = capacity - 1;
    shift = 32 - bits;
    grow_at = capacity * 7 / 10;
    // The tag alone places a slot, so rehashing never reads an entry.
    for (std::size_t i = 0; i < old_capacity; ++i) {
      if (old[i].index == no_index) {
        continue;
      }
      std::size_t j = home(old[i].tag);
      while (slots[j].index != no_index) {
        j = (j + 1) & mask;
      }
      slots[j] = old[i];
    }
  }

  void reserve_one() {
    if (count + 1 > grow_at) {
      resize_table(32 - shift + 1);
    }
  }

  // Returns the slot holding `key`, or the empty slot that ends its probe.
  std::size_t find(std::uint32_t tag, std::string_view key, bool& found) const {
    std::size_t i = home(tag);
    for (;;) {
      const slot& s = slots[i];
      if (s.index == no_index) {
        found = false;
        return i;
      }
      if (s.tag == tag && std::string_view(entry_at(s.index).key) == key) {
        found = true;
        return i;
      }
      i = (i + 1) & mask;
    }
  }

  // Returns the slot naming entry `index`; stops at an empty slot (returning
  // npos) rather than loop if the invariants were ever broken.
  std::size_t find_index(std::uint32_t tag, std::uint32_t index) const {
    std::size_t i = home(tag);
    while (slots[i].index != index) {
      if (slots[i].index == no_index) {
        return npos;
      }
      i = (i + 1) & mask;
    }
    return i;
  }

  // Backward-shift deletion: linear probing needs no tombstones this way, so
  // probe lengths do not creep up under constant churn.
  void erase_slot(std::size_t hole) {
    std::size_t j = hole;
    for (;;) {
      j = (j + 1) & mask;
      if (slots[j].index == no_index) {
        break;
      }
      const std::size_t h = home(slots[j].tag);
      if (((j - h) & mask) >= ((j - hole) & mask)) {
        slots[hole] = slots[j];
        hole = j;
      }
    }
    slots[hole].index = no_index;
    --count;
  }

  void prefetch_slot(std::uint64_t hash) const { prefetch(&slots[home(tag_of(hash))]); }

  // Prefetches the entry of the first slot whose tag matches, if its probe is short.
  void prefetch_entry(std::uint64_t hash) const {
    const std::uint32_t tag = tag_of(hash);
    std::size_t i = home(tag);
    for (int n = 0; n < 4; ++n) {
      const slot& s = slots[i];
      if (s.index == no_index) {
        return;
      }
      if (s.tag == tag) {
        prefetch(&entry_at(s.index));
        return;
      }
      i = (i + 1) & mask;
    }
  }

  // Prefetches the entries the next `n` allocations will hand out.
  void prefetch_free(std::size_t n) const {
    const std::size_t k = std::min(n, free_list.size());
    for (std::size_t j = 0; j < k; ++j) {
      prefetch(&entry_at(free_list[free_list.size() - 1 - j]));
    }
  }

  // Returns an unused entry; its key and state are for the caller to set.
  std::uint32_t allocate() {
    if (!free_list.empty()) {
      const std::uint32_t i = free_list.back();
      free_list.pop_back();
      return i;
    }
    if (allocated == max_entries) {
      throw std::length_error("memory_idempotency_store: shard full");
    }
    if ((allocated & (chunk_size - 1)) == 0) {
      // Every allocation happens before anything changes, and the free list has
      // room for every entry, so freeing never allocates (and never throws).
      auto chunk = std::make_unique<entry[]>(chunk_size);
      make_room(chunks, chunks.size() + 1);
      make_room(results, results.size() + 1);
      make_room(free_list, std::size_t{allocated} + chunk_size);
      chunks.push_back(std::move(chunk));
      results.emplace_back();
    }
    return allocated++;
  }

  void release_entry(std::uint32_t i) noexcept {
    entry& e = entry_at(i);
    drop_buffer(e.key);
    if (e.has_result) {
      drop_buffer(result_at(i));
      e.has_result = false;
    }
    free_list.push_back(i);
  }

  std::uint32_t fifo_for(std::chrono::milliseconds ttl) {
    std::uint32_t empty = no_index;
    for (std::uint32_t i = 0; i < fifos.size(); ++i) {
      if (fifos[i].ttl == ttl) {
        return i;
      }
      if (empty == no_index && fifos[i].size() == 0) {
        empty = i;
      }
    }
    // An empty FIFO has no entry pointing at it, so it can serve another TTL: the
    // list stays as long as the number of TTLs in use at once.
    if (empty == no_index) {
      empty = static_cast<std::uint32_t>(fifos.size());
      fifos.emplace_back();
    }
    fifos[empty].ttl = ttl;
    return empty;
  }

  // Returns false (and changes nothing) when out of memory.
  static bool resize_ring(fifo& f, std::uint64_t capacity) noexcept {
    std::unique_ptr<item[]> ring{new (std::nothrow) item[capacity]};
    if (!ring) {
      return false;
    }
    for (std::uint64_t p = f.head; p != f.tail; ++p) {
      ring[p & (capacity - 1)] = f.at(p);
    }
    f.ring = std::move(ring);
    f.capacity = capacity;
    return true;
  }

  // Shrinking is only an economy: it is skipped when memory is short.
  static void shrink_to_fit(fifo& f) noexcept {
    std::uint64_t capacity = f.capacity;
    while (capacity > min_ring && f.size() * 4 < capacity) {
      capacity /= 2;
    }
    if (capacity != f.capacity) {
      resize_ring(f, capacity);
    }
  }

  // Returns the FIFO of `ttl`, with room for one more item. This is the only step
  // of a placement that allocates, so callers do it before changing anything.
  std::uint32_t reserve_place(std::chrono::milliseconds ttl) {
    const std::uint32_t fi = fifo_for(ttl);
    fifo& f = fifos[fi];
    if (f.size() == f.capacity && !resize_ring(f, std::max(min_ring, f.capacity * 2))) {
      throw std::bad_alloc();
    }
    return fi;
  }

  // Appends entry `i` to FIFO `fi` (reserved), expiring at `expires`.
  void place(std::uint32_t i, entry& e, std::uint32_t fi, rep expires) noexcept {
    fifo& f = fifos[fi];
    const bool cleanup = e.has_result || e.key.capacity() > kept_capacity;
    f.at(f.tail) = item{expires, i | (cleanup ? cleanup_bit : 0), e.tag};
    e.expires = expires;
    e.fifo = fi;
    e.pos = static_cast<std::uint32_t>(f.tail);
    ++f.tail;
    ++f.live;
  }

  // Leaves the item in place as a tombstone: finding it again later would cost a
  // cold miss, marking it now costs none.
  void tombstone(std::uint32_t fi, std::uint32_t pos) noexcept {
    fifo& f = fifos[fi];
    f.ring[pos & (f.capacity - 1)].index = no_index;
    --f.live;
    bound_stale(f);
  }

  // Keeps stale items at most `live + stale_slack`. Each compaction follows more
  // than stale_slack new tombstones and costs O(items), fewer than twice the stale
  // ones: amortized O(1) per tombstone.
  void bound_stale(fifo& f) noexcept {
    if (f.size() - f.live > f.live + stale_slack) {
      compact(f);
    }
  }

  // Moves entry `i` from its FIFO to FIFO `fi` (reserved).
  void move(std::uint32_t i, entry& e, std::uint32_t fi, rep expires) noexcept {
    const std::uint32_t old_fifo = e.fifo;
    const std::uint32_t old_pos = e.pos;
    // Placing first: the tombstone may compact the FIFO, even the reserved one.
    place(i, e, fi, expires);
    tombstone(old_fifo, old_pos);
  }

  // Slides the live items toward the tail, keeping their order. Live items that
  // already sit at the tail do not move, and the scan stops at the last live one,
  // so the usual case (old claims all done, recent ones live) reads only the live
  // items and touches no entry.
  void compact(fifo& f) noexcept {
    std::uint64_t w = f.tail;
    std::size_t seen = 0;
    for (std::uint64_t p = f.tail; p != f.head && seen < f.live;) {
      --p;
      const item it = f.at(p);
      if (it.index == no_index) {
        continue;
      }
      ++seen;
      --w;
      if (w != p) {
        f.at(w) = it;
        entry_at(it.index & index_bits).pos = static_cast<std::uint32_t>(w);
      }
    }
    f.head = w;
    shrink_to_fit(f);
  }

  void prefetch_expired(const item& it, rep now) const {
    if (it.index == no_index || it.expires > now) {
      return;
    }
    prefetch(&slots[home(it.tag)]);
    if ((it.index & cleanup_bit) != 0) {
      prefetch(&entry_at(it.index & index_bits));
    }
  }

  // Pops stale and expired items off the FIFO heads, at most `budget` of them.
  void prune(rep now, std::size_t budget) noexcept {
    for (fifo& f : fifos) {
      if (f.size() == 0) {
        continue;
      }
      const std::uint64_t primed =
          f.head + std::min<std::uint64_t>(f.size(), prune_ahead);
      for (std::uint64_t p = f.head; p != primed; ++p) {
        prefetch_expired(f.at(p), now);
      }
      while (budget > 0 && f.head != f.tail) {
        if (f.size() > prune_ahead) {
          prefetch_expired(f.at(f.head + prune_ahead), now);
        }
        const item it = f.at(f.head);
        if (it.index != no_index) {
          if (it.expires > now) {
            break;
          }
          const std::uint32_t index = it.index & index_bits;
          const std::size_t at = find_index(it.tag, index);
          if (at != npos) {
            erase_slot(at);
            if ((it.index & cleanup_bit) != 0) {
              release_entry(index);
            } else {
              // Its key buffer is small enough to keep for the next claim.
              free_list.push_back(index);
            }
          }
          --f.live;
        }
        ++f.head;
        --budget;
      }
      // Popping live items lowers the bound too.
      bound_stale(f);
      shrink_to_fit(f);
    }
  }

  // Reads the clock for this shard: never older than a reading it has seen, so
  // every FIFO stays in expiry order even when threads read the clock out of order.
  rep advance(rep now) {
    last_now = std::max(last_now, now);
    return last_now;
  }
};

memory_idempotency_store::memory_idempotency_store(clock_fn now, std::size_t shards)
    : now_(now ? std::move(now) : clock_fn{[] { return clock::now(); }}),
      shards_(new shard[std::max<std::size_t>(shards, 1)]),
      shard_count_(std::max<std::size_t>(shards, 1)) {}

memory_idempotency_store::~memory_idempotency_store() = default;

memory_idempotency_store::shard&
memory_idempotency_store::shard_of(std::uint64_t hash) const {
  // The low half picks the shard, the high half (the tag) the slot.
  const auto low = static_cast<std::uint32_t>(hash);
  return shards_[static_cast<std::size_t>((std::uint64_t{low} * shard_count_) >> 32)];
}

template <class KeyOf, class Visit>
void memory_idempotency_store::visit_batch(std::size_t n, bool allocates, KeyOf key_of,
                                           Visit visit) {
  thread_local batch_scratch scratch;
  const rep now = now_().time_since_epoch().count();
  std::vector<std::uint64_t>& hashes = scratch.hashes;
  hashes.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    hashes[i] = hash_key(key_of(i));
  }
  std::vector<std::uint32_t>& order = scratch.order;
  order.resize(n);
  std::vector<std::uint32_t>& starts = scratch.starts;
  if (shard_count_ == 1) {
    for (std::size_t i = 0; i < n; ++i) {
      order[i] = static_cast<std::uint32_t>(i);
    }
    starts.assign({0, static_cast<std::uint32_t>(n)});
  } else {
    // Counting sort by shard: keeps batch order within a shard.
    starts.assign(shard_count_ + 1, 0);
    for (std::size_t i = 0; i < n; ++i) {
      ++starts[static_cast<std::size_t>(&shard_of(hashes[i]) - shards_.get()) + 1];
    }
    for (std::size_t s = 0; s < shard_count_; ++s) {
      starts[s + 1] += starts[s];
    }
    for (std::size_t i = 0; i < n; ++i) {
      const auto s = static_cast<std::size_t>(&shard_of(hashes[i]) - shards_.get());
      order[starts[s]++] = static_cast<std::uint32_t>(i);
    }
    // The fill pass moved each start to the next shard's: shift them back.
    for (std::size_t s = shard_count_; s > 0; --s) {
      starts[s] = starts[s - 1];
    }
    starts[0] = 0;
  }
  auto run = [&](shard& s, std::size_t first, std::size_t last) {
    // Slot misses of the first items overlap with pruning; entry prefetches need
    // the slot, so they start after it.
    for (std::size_t k = first; k < std::min(first + slot_ahead, last); ++k) {
      s.prefetch_slot(hashes[order[k]]);
    }
    const rep t = s.advance(now);
    s.prune(t, 2 * (last - first) + prune_slack);
    if (allocates) {
      s.prefetch_free(last - first);
    }
    for (std::size_t k = first; k < std::min(first + entry_ahead, last); ++k) {
      s.prefetch_entry(hashes[order[k]]);
    }
    for (std::size_t k = first; k < last; ++k) {
      if (k + slot_ahead < last) {
        s.prefetch_slot(hashes[order[k + slot_ahead]]);
      }
      if (k + entry_ahead < last) {
        s.prefetch_entry(hashes[order[k + entry_ahead]]);
      }
      visit(s, order[k], hashes[order[k]], t);
    }
  };
  // Shards another thread holds are left for a second pass, so two batches
  // walking the shards in the same order do not queue behind each other.
  std::vector<std::uint32_t>& busy = scratch.busy;
  busy.clear();
  for (std::size_t si = 0; si + 1 < starts.size(); ++si) {
    if (starts[si] == starts[si + 1]) {
      continue;
    }
    shard& s = shards_[si];
    std::unique_lock<std::mutex> lock{s.mutex, std::try_to_lock};
    if (!lock.owns_lock()) {
      busy.push_back(static_cast<std::uint32_t>(si));
      continue;
    }
    run(s, starts[si], starts[si + 1]);
  }
  for (std::uint32_t si : busy) {
    shard& s = shards_[si];
    std::lock_guard<std::mutex> lock{s.mutex};
    run(s, starts[si], starts[si + 1]);
  }
}

std::vector<claim_result>
memory_idempotency_store::claim(const std::vector<std::string_view>& keys,
                                std::chrono::milliseconds ttl) {
  std::vector<claim_result> out(keys.size());
  if (!available()) {
    return out; // default status is unavailable
  }
  auto key_of = [&](std::size_t i) { return keys[i]; };
  visit_batch(keys.size(), true, key_of,
              [&](shard& s, std::size_t i, std::uint64_t hash, rep now) {
                claim_result& r = out[i];
                const std::uint32_t tag = tag_of(hash);
                s.reserve_one();
                bool found = false;
                const std::size_t at = s.find(tag, keys[i], found);
                std::uint32_t index = 0;
                if (found) {
                  index = s.slots[at].index;
                  shard::entry& e = s.entry_at(index);
                  if (e.expires > now) {
                    if (e.done) {
                      r.status = claim_result::state::done;
                      if (e.has_result) {
                        r.result = s.result_at(index);
                      }
                    } else {
                      r.status = claim_result::state::in_flight;
                    }
                    return;
                  }
                  // Expired but not pruned yet: claim it again in place.
                  const std::uint32_t fi = s.reserve_place(ttl);
                  if (e.has_result) {
                    drop_buffer(s.result_at(index));
                  }
                  e.done = false;
                  e.has_result = false;
                  e.token = next_token_.fetch_add(1, std::memory_order_relaxed);
                  s.move(index, e, fi, expiry(now, ttl));
                  r.status = claim_result::state::fresh;
                  r.token = e.token;
                  return;
                }
                const std::uint32_t fi = s.reserve_place(ttl);
                index = s.allocate();
                shard::entry& e = s.entry_at(index);
                try {
                  e.key.assign(keys[i].data(), keys[i].size());
                } catch (...) {
                  s.free_list.push_back(index);
                  throw;
                }
                e.tag = tag;
                e.done = false;
                e.has_result = false;
                e.token = next_token_.fetch_add(1, std::memory_order_relaxed);
                s.slots[at] = shard::slot{tag, index};
                ++s.count;
                s.place(index, e, fi, expiry(now, ttl));
                r.status = claim_result::state::fresh;
                r.token = e.token;
              });
  return out;
}

std::vector<fence_result>
memory_idempotency_store::complete(const std::vector<done_mark>& batch,
                                   std::chrono::milliseconds ttl) {
  if (!available()) {
    return std::vector<fence_result>(batch.size(), fence_result::unavailable);
  }
  std::vector<fence_result> out(batch.size(), fence_result::fenced);
  auto key_of = [&](std::size_t i) { return batch[i].key; };
  visit_batch(batch.size(), false, key_of,
              [&](shard& s, std::size_t i, std::uint64_t hash, rep now) {
                const done_mark& c = batch[i];
                bool found = false;
                const std::size_t at = s.find(tag_of(hash), c.key, found);
                if (!found) {
                  return;
                }
                const std::uint32_t index = s.slots[at].index;
                shard::entry& e = s.entry_at(index);
                if (e.token != c.token || e.expires <= now) {
                  return;
                }
                if (!e.done) {
                  const std::uint32_t fi = s.reserve_place(ttl);
                  if (!c.result.empty()) {
                    // has_result is still false, so a failed copy stays unseen.
                    s.make_result(index).assign(c.result.data(), c.result.size());
                    e.has_result = true;
                  }
                  e.done = true;
                  s.move(index, e, fi, expiry(now, ttl));
                }
                out[i] = fence_result::applied;
              });
  return out;
}

fence_result memory_idempotency_store::release(std::string_view key,
                                               fencing_token token) {
  if (!available()) {
    return fence_result::unavailable;
  }
  const rep now = now_().time_since_epoch().count();
  const std::uint64_t hash = hash_key(key);
  shard& s = shard_of(hash);
  std::lock_guard<std::mutex> lock{s.mutex};
  const rep t = s.advance(now);
  s.prune(t, 2 + prune_slack);
  bool found = false;
  const std::size_t at = s.find(tag_of(hash), key, found);
  if (!found) {
    return fence_result::fenced;
  }
  const std::uint32_t index = s.slots[at].index;
  shard::entry& e = s.entry_at(index);
  if (e.done || e.token != token || e.expires <= t) {
    return fence_result::fenced;
  }
  s.tombstone(e.fifo, e.pos);
  s.erase_slot(at);
  s.release_entry(index);
  return fence_result::applied;
}

std::size_t memory_idempotency_store::size() {
  const rep now = now_().time_since_epoch().count();
  std::size_t n = 0;
  for (std::size_t si = 0; si < shard_count_; ++si) {
    shard& s = shards_[si];
    std::lock_guard<std::mutex> lock{s.mutex};
    s.prune(s.advance(now), std::numeric_limits<std::size_t>::max());
    n += s.count;
  }
  return n;
}

} // namespace mailroom

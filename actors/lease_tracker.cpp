#include "actors/lease_tracker.hpp"

#include <algorithm>

namespace mailroom {

lease_group::lease_group(lease_tracker& tracker, std::vector<receipt> receipts,
                         clock::time_point expires)
    : tracker_(tracker), receipts_(std::move(receipts)),
      state_(std::make_unique<std::atomic<std::uint8_t>[]>(receipts_.size())),
      held_(receipts_.size()), expires_(expires) {
  for (std::size_t i = 0; i < receipts_.size(); ++i) {
    state_[i].store(holding, std::memory_order_relaxed);
  }
}

void lease_group::release(std::uint32_t index) {
  auto was = state_[index].exchange(released, std::memory_order_acq_rel);
  if (was != released && held_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    tracker_.close(this);
  }
}

void lease_group::release_all() {
  for (std::size_t i = 0; i < receipts_.size(); ++i) {
    release(static_cast<std::uint32_t>(i));
  }
}

void lease_tracker::close(lease_group* group) {
  std::shared_ptr<lease_group> last; // freed after the lock
  std::lock_guard<std::mutex> guard{mutex_};
  auto pos = group->position_;
  if (pos >= groups_.size() || groups_[pos].get() != group) {
    return;
  }
  last = std::move(groups_[pos]);
  if (pos + 1 != groups_.size()) {
    groups_[pos] = std::move(groups_.back());
    groups_[pos]->position_ = pos;
  }
  groups_.pop_back();
}

lease_group* lease_tracker::open(const envelope_batch& batch, std::size_t first,
                                 clock::time_point now) {
  if (first >= batch.size()) {
    return nullptr;
  }
  std::vector<receipt> receipts;
  receipts.reserve(batch.size() - first);
  for (std::size_t i = first; i < batch.size(); ++i) {
    receipts.push_back(batch[i].handle);
  }
  auto group =
      std::make_shared<lease_group>(*this, std::move(receipts), now + terms_.duration);
  auto* raw = group.get();
  std::lock_guard<std::mutex> guard{mutex_};
  group->position_ = groups_.size();
  groups_.push_back(std::move(group));
  return raw;
}

lease_renewal lease_tracker::renew(transport& t, clock::time_point now) {
  lease_renewal out;
  // Renew what has less than `duration - renew_every` left: one renewal
  // period of slack before it would run out.
  auto margin = terms_.duration - terms_.renew_every;
  auto until = now + terms_.duration;
  std::vector<const receipt*> receipts;
  std::vector<std::pair<lease_group*, std::size_t>> where;
  std::vector<std::shared_ptr<lease_group>> renewing; // alive until extend returns
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto& g : groups_) {
      if (g->expires_ - now > margin) {
        continue;
      }
      for (std::size_t i = 0; i < g->receipts_.size(); ++i) {
        if (g->state_[i].load(std::memory_order_acquire) == lease_group::holding) {
          receipts.push_back(&g->receipts_[i]);
          where.emplace_back(g.get(), i);
        }
      }
      g->expires_ = until;
      renewing.push_back(g);
    }
  }
  if (receipts.empty()) {
    return out;
  }
  // `renewing` keeps the groups, and so the receipts, alive outside the lock.
  std::vector<std::size_t> lost;
  out.status = t.extend(receipts, until, lost);
  for (auto i : lost) {
    if (i < where.size()) {
      auto [g, index] = where[i];
      // Lost, not released: its item will still be settled (stale) and
      // release it then; it is just no longer renewed.
      std::uint8_t expected = lease_group::holding;
      g->state_[index].compare_exchange_strong(expected, lease_group::lost,
                                               std::memory_order_acq_rel);
    }
  }
  out.extended = receipts.size() - lost.size();
  out.lost = lost.size();
  return out;
}

std::size_t lease_tracker::groups() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return groups_.size();
}

std::size_t lease_tracker::held() const {
  std::lock_guard<std::mutex> guard{mutex_};
  std::size_t n = 0;
  for (auto& g : groups_) {
    n += g->held();
  }
  return n;
}

} // namespace mailroom

#include "slimlm/serve/kv_block_pool.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "slimlm/core/check.h"
#include "slimlm/core/hash.h"

namespace slimlm::serve {
namespace {

constexpr int64_t kMaxPositions = std::numeric_limits<int32_t>::max();

// The chain hash of a full block: its tokens mixed into a scrambled hash of everything before.
uint64_t ChainHash(uint64_t parent, std::span<const int32_t> tokens) {
  return HashBytes(tokens.data(), tokens.size_bytes(), Mix64(parent));
}

}  // namespace

Status KvBlockPool::CheckSizes(int64_t n_blocks, int64_t block_size) {
  if (block_size < 1) return InvalidArgumentError("kv block pool: block size {} < 1", block_size);
  if (n_blocks < 0 || n_blocks > kMaxPositions / block_size) {
    return InvalidArgumentError("kv block pool: {} blocks of {} positions: expected 0 to {} blocks",
                                n_blocks, block_size, kMaxPositions / block_size);
  }
  return Status::Ok();
}

Result<KvBlockPool> KvBlockPool::Create(int64_t n_blocks, int64_t block_size) {
  SLIMLM_RETURN_IF_ERROR(CheckSizes(n_blocks, block_size));
  return KvBlockPool(n_blocks, block_size);
}

KvBlockPool::KvBlockPool(int64_t n_blocks, int64_t block_size) : block_size_(block_size) {
  const Status sizes = CheckSizes(n_blocks, block_size);
  SLIMLM_CHECK(sizes.ok()) << sizes.message();
  blocks_.resize(n_blocks);
  tokens_.resize(n_blocks * block_size);
  // Reversed, so that blocks are handed out 0, 1, 2, ... (easier to read in logs and tests).
  free_.reserve(n_blocks);
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

Status KvBlockPool::AddSequence(int64_t id) {
  if (sequences_.contains(id)) return InvalidArgumentError("kv block pool: sequence {} exists", id);
  sequences_.emplace(id, Sequence());
  return Status::Ok();
}

PrefixMatch KvBlockPool::MatchPrefix(std::span<const int32_t> tokens) const {
  PrefixMatch match;
  const size_t max_blocks = tokens.empty() ? 0 : (tokens.size() - 1) / block_size_;
  uint64_t hash = kHashSeed;
  uint64_t serial = 0;
  for (size_t i = 0; i < max_blocks; ++i) {
    const std::span<const int32_t> content = tokens.subspan(i * block_size_, block_size_);
    hash = ChainHash(hash, content);
    const auto it = cached_.find(hash);
    if (it == cached_.end() || !Holds(it->second, content, serial)) break;
    const Block& block = blocks_[it->second];
    match.blocks.push_back(it->second);
    if (block.ref_count == 0) ++match.n_evictable;
    serial = block.serial;
  }
  match.n_tokens = static_cast<int64_t>(match.blocks.size()) * block_size_;
  return match;
}

Result<int64_t> KvBlockPool::AddSequenceWithPrefix(int64_t id, std::span<const int32_t> tokens) {
  if (sequences_.contains(id)) return InvalidArgumentError("kv block pool: sequence {} exists", id);
  PrefixMatch match = MatchPrefix(tokens);
  Sequence seq;
  for (int32_t b : match.blocks) {
    if (blocks_[b].ref_count++ == 0) LruRemove(b);
  }
  if (!match.blocks.empty()) {
    seq.chain_hash = blocks_[match.blocks.back()].hash;
    seq.chain_serial = blocks_[match.blocks.back()].serial;
  }
  seq.table = std::move(match.blocks);
  seq.length = seq.committed = match.n_tokens;
  sequences_.emplace(id, std::move(seq));

  stats_.queries += static_cast<int64_t>(tokens.size());
  stats_.hits += match.n_tokens;
  ++stats_.requests;
  if (match.n_tokens > 0) ++stats_.requests_hit;
  return match.n_tokens;
}

int64_t KvBlockPool::BlocksNeeded(const Sequence& seq, int64_t n) const {
  const int64_t room = static_cast<int64_t>(seq.table.size()) * block_size_ - seq.length;
  // Written as (x - 1) / b + 1 rather than (x + b - 1) / b, which overflows for a huge n.
  return n <= room ? 0 : (n - room - 1) / block_size_ + 1;
}

bool KvBlockPool::CanAppend(int64_t id, int64_t n) const {
  const auto it = sequences_.find(id);
  return n >= 0 && it != sequences_.end() && BlocksNeeded(it->second, n) <= FreeBlocks();
}

Status KvBlockPool::AppendSlots(int64_t id, int64_t n) {
  if (n < 0) return InvalidArgumentError("kv block pool: sequence {}: {} positions < 0", id, n);
  const auto it = sequences_.find(id);
  if (it == sequences_.end()) return NotFoundError("kv block pool: no sequence {}", id);
  Sequence& seq = it->second;
  const int64_t needed = BlocksNeeded(seq, n);
  if (needed > FreeBlocks()) {
    return ResourceExhaustedError("kv block pool: sequence {} needs {} more blocks, {} are free",
                                  id, needed, FreeBlocks());
  }
  for (int64_t i = 0; i < needed; ++i) seq.table.push_back(Allocate());
  seq.length += n;
  return Status::Ok();
}

Status KvBlockPool::CommitTokens(int64_t id, std::span<const int32_t> tokens) {
  const auto it = sequences_.find(id);
  if (it == sequences_.end()) return NotFoundError("kv block pool: no sequence {}", id);
  Sequence& seq = it->second;
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n > seq.length - seq.committed) {
    return FailedPreconditionError(
        "kv block pool: sequence {}: {} tokens to commit, {} reserved positions to hold them", id,
        n, seq.length - seq.committed);
  }
  for (int32_t token : tokens) {
    const int64_t pos = seq.committed++;
    const int32_t block = seq.table[pos / block_size_];
    // The no-shared-writes invariant (see the header): a break here would corrupt another
    // sequence's KV rows, so it is checked in every build.
    SLIMLM_CHECK(blocks_[block].ref_count == 1)
        << "sequence " << id << " writes position " << pos << " into block " << block
        << " shared by " << blocks_[block].ref_count << " sequences";
    tokens_[block * block_size_ + pos % block_size_] = token;
    if ((pos + 1) % block_size_ == 0) RegisterFullBlock(seq, block);
  }
  return Status::Ok();
}

void KvBlockPool::RegisterFullBlock(Sequence& seq, int32_t block) {
  if (!seq.cacheable) return;
  const std::span<const int32_t> content = StoredTokens(block);
  const uint64_t hash = ChainHash(seq.chain_hash, content);
  const auto [it, inserted] = cached_.try_emplace(hash, block);
  if (inserted) {
    Block& b = blocks_[block];
    b.hash = hash;
    b.serial = next_serial_++;
    b.parent_serial = seq.chain_serial;
    seq.chain_serial = b.serial;
  } else if (Holds(it->second, content, seq.chain_serial)) {
    // Another sequence computed the same block first (both prefilled it before either was
    // cached). Ours stays private; the chain goes on through the cached twin.
    seq.chain_serial = blocks_[it->second].serial;
  } else {
    seq.cacheable = false;  // A 64-bit collision: the slot is taken by a different block.
  }
  seq.chain_hash = hash;
}

void KvBlockPool::FreeSequence(int64_t id) {
  const auto it = sequences_.find(id);
  if (it == sequences_.end()) return;
  // Last block first, so the sequence's later blocks are evicted before its earlier ones: an
  // early block is more likely to be shared, and evicting it strands every block after it.
  const std::vector<int32_t>& table = it->second.table;
  for (auto b = table.rbegin(); b != table.rend(); ++b) Release(*b);
  sequences_.erase(it);
}

std::span<const int32_t> KvBlockPool::BlockTable(int64_t id) const {
  const auto it = sequences_.find(id);
  if (it == sequences_.end()) return {};
  return it->second.table;
}

int64_t KvBlockPool::Length(int64_t id) const {
  const auto it = sequences_.find(id);
  return it == sequences_.end() ? 0 : it->second.length;
}

double KvBlockPool::Usage() const {
  if (blocks_.empty()) return 0;
  return static_cast<double>(n_blocks() - FreeBlocks()) / static_cast<double>(n_blocks());
}

int32_t KvBlockPool::RefCount(int32_t block) const {
  return block >= 0 && block < n_blocks() ? blocks_[block].ref_count : 0;
}

std::span<const int32_t> KvBlockPool::StoredTokens(int32_t block) const {
  return std::span<const int32_t>(tokens_).subspan(block * block_size_, block_size_);
}

bool KvBlockPool::Holds(int32_t block, std::span<const int32_t> tokens,
                        uint64_t parent_serial) const {
  const std::span<const int32_t> stored = StoredTokens(block);
  return blocks_[block].parent_serial == parent_serial &&
         std::equal(stored.begin(), stored.end(), tokens.begin(), tokens.end());
}

int32_t KvBlockPool::Allocate() {
  int32_t block;
  if (!free_.empty()) {
    block = free_.back();
    free_.pop_back();
  } else {
    SLIMLM_CHECK(lru_head_ >= 0) << "allocation from an empty pool";
    block = lru_head_;
    LruRemove(block);
    cached_.erase(blocks_[block].hash);
    blocks_[block].serial = 0;
    ++stats_.evictions;
  }
  blocks_[block].ref_count = 1;
  return block;
}

void KvBlockPool::Release(int32_t block) {
  Block& b = blocks_[block];
  if (--b.ref_count > 0) return;
  if (b.serial != 0) {
    LruPushBack(block);
  } else {
    free_.push_back(block);
  }
}

void KvBlockPool::LruPushBack(int32_t block) {
  Block& b = blocks_[block];
  b.lru_prev = lru_tail_;
  b.lru_next = -1;
  (lru_tail_ >= 0 ? blocks_[lru_tail_].lru_next : lru_head_) = block;
  lru_tail_ = block;
  ++n_evictable_;
}

void KvBlockPool::LruRemove(int32_t block) {
  Block& b = blocks_[block];
  (b.lru_prev >= 0 ? blocks_[b.lru_prev].lru_next : lru_head_) = b.lru_next;
  (b.lru_next >= 0 ? blocks_[b.lru_next].lru_prev : lru_tail_) = b.lru_prev;
  b.lru_prev = b.lru_next = -1;
  --n_evictable_;
}

Status KvBlockPool::CheckConsistency() const {
  const int64_t n = n_blocks();
  std::vector<int32_t> refs(n, 0);
  for (const auto& [id, seq] : sequences_) {
    const int64_t blocks = static_cast<int64_t>(seq.table.size());
    if (seq.committed < 0 || seq.committed > seq.length ||
        blocks != (seq.length + block_size_ - 1) / block_size_) {
      return InternalError("sequence {}: {} committed of {} positions in {} blocks", id,
                           seq.committed, seq.length, blocks);
    }
    for (int64_t j = 0; j < blocks; ++j) {
      const int32_t b = seq.table[j];
      if (b < 0 || b >= n) return InternalError("sequence {}: block id {}", id, b);
      ++refs[b];
      // A block that still has positions to be written must be this sequence's alone.
      if (j >= seq.committed / block_size_ && blocks_[b].ref_count != 1) {
        return InternalError("sequence {}: block {} is written and shared", id, b);
      }
    }
  }
  enum : uint8_t { kHeld, kFree, kEvictable };
  std::vector<uint8_t> where(n, kHeld);
  for (int32_t b : free_) {
    if (b < 0 || b >= n || where[b] != kHeld) return InternalError("free list: block {}", b);
    where[b] = kFree;
  }
  int64_t n_listed = 0;
  int32_t last = -1;
  // A cycle would revisit a block already marked, so the walk ends.
  for (int32_t b = lru_head_; b >= 0; last = b, b = blocks_[b].lru_next) {
    if (b >= n || where[b] != kHeld || blocks_[b].lru_prev != last) {
      return InternalError("evictable list: block {}", b);
    }
    where[b] = kEvictable;
    ++n_listed;
  }
  if (last != lru_tail_ || n_listed != n_evictable_) {
    return InternalError("evictable list: {} blocks ending at {}, expected {} ending at {}",
                         n_listed, last, n_evictable_, lru_tail_);
  }
  for (int32_t b = 0; b < n; ++b) {
    const Block& block = blocks_[b];
    if (block.ref_count != refs[b]) {
      return InternalError("block {}: count {}, in {} tables", b, block.ref_count, refs[b]);
    }
    const bool cached = block.serial != 0;
    const bool placed = where[b] == (refs[b] > 0 ? kHeld : cached ? kEvictable : kFree);
    if (!placed) return InternalError("block {} (count {}) on the wrong list", b, refs[b]);
    const auto it = cached_.find(block.hash);
    if (cached && (it == cached_.end() || it->second != b)) {
      return InternalError("block {}: cached but not in the hash map", b);
    }
  }
  for (const auto& [hash, b] : cached_) {
    if (b < 0 || b >= n || blocks_[b].serial == 0 || blocks_[b].hash != hash) {
      return InternalError("hash map entry {:#x} -> block {}", hash, b);
    }
  }
  return Status::Ok();
}

}  // namespace slimlm::serve

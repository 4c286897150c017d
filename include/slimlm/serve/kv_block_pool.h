// The KV-cache block pool of the serving engine: the bookkeeping of a paged KV cache (vLLM's
// PagedAttention), independent of tensors. The memory itself, n_blocks × block_size rows per
// layer and head, is owned elsewhere; this class hands out block ids.
//
// Every sequence has a block table: position p lives in block table[p / block_size], row
// p % block_size. Blocks are reference-counted, so sequences whose prompts share a prefix share
// the blocks that hold it (the prefix cache).
//
// The life of a sequence:
//   pool.AddSequenceWithPrefix(id, prompt)  -> positions reused from cached blocks (r)
//   pool.AppendSlots(id, n)                 -> room for n more positions, or kResourceExhausted
//   ... the engine writes the KV rows of those positions ...
//   pool.CommitTokens(id, tokens)           -> the token ids at those positions; blocks that
//                                              become full join the prefix cache
//   pool.FreeSequence(id)                   -> finished, preempted or disconnected
//
// Prefix cache. A full block is identified by a hash chain: hash(hash of all full blocks before
// it, its block_size token ids), so a block only matches when the whole prefix before it matches.
// A lookup also compares the block's stored tokens and the identity of the block it followed, so
// a hash collision can cost a cache miss but never hands a sequence the wrong KV rows.
//
// Invariant (why no copy-on-write is needed): a sequence writes only into blocks it holds alone.
// Only full, committed blocks are ever shared; a sequence that reuses cached blocks starts its
// next position in a new block; the last prompt token is never reused (its logits are needed).
// CommitTokens checks the invariant and aborts if it is ever broken (a bug, never user input).
//
// Free blocks are of two kinds: never-used (or uncached) ones, and evictable ones, cached full
// blocks whose last user left and which can still be matched. Allocation takes never-used blocks
// first, then evicts the least recently used evictable block (its hash entry goes with it).
//
// Every call is O(1) or O(blocks touched), except CheckConsistency. Not thread-safe: the engine
// thread owns the pool.
#ifndef SLIMLM_SERVE_KV_BLOCK_POOL_H_
#define SLIMLM_SERVE_KV_BLOCK_POOL_H_

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "slimlm/core/hash.h"
#include "slimlm/core/status.h"

namespace slimlm::serve {

// The cached blocks that hold the start of a prompt.
struct PrefixMatch {
  std::vector<int32_t> blocks;  // In order; all full.
  int64_t n_tokens = 0;         // blocks.size() * block_size: positions that need no prefill.
  // Of `blocks`, those no live sequence holds. They count in FreeBlocks(), and reusing them takes
  // them out of it: admitting the prompt costs (new blocks needed) + n_evictable free blocks.
  int64_t n_evictable = 0;
};

// Prefix-cache counters, in tokens like vLLM's (misses = queries - hits).
struct PrefixCacheStats {
  int64_t queries = 0;       // Prompt tokens looked up by AddSequenceWithPrefix.
  int64_t hits = 0;          // Of those, positions reused from cached blocks.
  int64_t requests = 0;      // AddSequenceWithPrefix calls.
  int64_t requests_hit = 0;  // Of those, calls that reused at least one block.
  int64_t evictions = 0;     // Cached blocks taken back for new allocations.
};

class KvBlockPool {
 public:
  // Checks what the constructor requires: 0 <= n_blocks, 1 <= block_size, and at most 2^31 - 1
  // positions in all (far beyond any KV cache that fits in memory).
  static Status CheckSizes(int64_t n_blocks, int64_t block_size);
  // Sizes that come from flags or requests: an error Status instead of an abort.
  static Result<KvBlockPool> Create(int64_t n_blocks, int64_t block_size);
  // Aborts when CheckSizes fails (a programmer error).
  KvBlockPool(int64_t n_blocks, int64_t block_size);

  int64_t n_blocks() const { return static_cast<int64_t>(blocks_.size()); }
  int64_t block_size() const { return block_size_; }

  // Starts an empty sequence. kInvalidArgument when `id` is live already.
  Status AddSequence(int64_t id);

  // The longest chain of cached full blocks that holds the start of `tokens`, short of the block
  // that would hold the last token: the engine must compute that one for its logits. Changes
  // nothing, counts nothing.
  PrefixMatch MatchPrefix(std::span<const int32_t> tokens) const;

  // Starts a sequence whose first positions reuse MatchPrefix(tokens): Length(id) is the number
  // returned, and only tokens[Length(id):] need AppendSlots, prefill and CommitTokens. Adds
  // tokens.size() to the stats' queries and the reused positions to hits. kInvalidArgument when
  // `id` is live already. Never fails for lack of blocks: reuse allocates none.
  Result<int64_t> AddSequenceWithPrefix(int64_t id, std::span<const int32_t> tokens);

  // Whether AppendSlots(id, n) would succeed; false for an unknown id or n < 0.
  bool CanAppend(int64_t id, int64_t n) const;

  // Reserves positions Length(id) .. Length(id) + n - 1, allocating blocks as needed. Errors,
  // which leave the pool unchanged: kInvalidArgument (n < 0), kNotFound (unknown id),
  // kResourceExhausted (not enough free blocks; the scheduler then preempts or waits).
  Status AppendSlots(int64_t id, int64_t n);

  // Reports the token ids of the next reserved positions, after the engine has written their KV
  // rows: a block that becomes full of committed tokens joins the prefix cache at once, and other
  // sequences may then read it. Errors, which leave the pool unchanged: kNotFound (unknown id),
  // kFailedPrecondition (more tokens than reserved, uncommitted positions).
  Status CommitTokens(int64_t id, std::span<const int32_t> tokens);

  // Releases the sequence's blocks at once: full cached ones whose count drops to 0 become
  // evictable, the others free. Unknown ids are ignored, so a disconnect that races the end of a
  // request is harmless.
  void FreeSequence(int64_t id);

  bool Contains(int64_t id) const { return sequences_.contains(id); }
  // The sequence's blocks in position order; empty for an unknown id. Valid until the next call
  // that is not const.
  std::span<const int32_t> BlockTable(int64_t id) const;
  // Reserved positions; 0 for an unknown id.
  int64_t Length(int64_t id) const;

  // Blocks an allocation may take: never-used plus evictable.
  int64_t FreeBlocks() const { return static_cast<int64_t>(free_.size()) + n_evictable_; }
  // Free blocks that are still in the prefix cache.
  int64_t EvictableBlocks() const { return n_evictable_; }
  // Blocks in the prefix cache, held by live sequences or evictable.
  int64_t CachedBlocks() const { return static_cast<int64_t>(cached_.size()); }
  int64_t LiveSequences() const { return static_cast<int64_t>(sequences_.size()); }
  // Fraction of blocks held by live sequences (the kv_cache_usage_ratio gauge); 0 when empty.
  double Usage() const;
  // How many live sequences hold `block`; 0 for an id outside the pool.
  int32_t RefCount(int32_t block) const;
  const PrefixCacheStats& prefix_stats() const { return stats_; }

  // Checks every internal invariant (reference counts match the block tables, each free block is
  // on exactly one list, the hash map matches the cached blocks, no shared block is written) and
  // returns kInternal naming the first broken one. O(n_blocks + table lengths): for tests.
  Status CheckConsistency() const;

 private:
  struct Block {
    int32_t ref_count = 0;
    // While cached (serial != 0): the chain hash, a serial number no other block ever gets, and
    // the serial of the block it followed when cached (0 at the start of a sequence).
    uint64_t hash = 0;
    uint64_t serial = 0;
    uint64_t parent_serial = 0;
    int32_t lru_prev = -1;  // Links of the evictable list, oldest first.
    int32_t lru_next = -1;
  };
  struct Sequence {
    std::vector<int32_t> table;
    int64_t length = 0;     // Reserved positions.
    int64_t committed = 0;  // Positions whose tokens are known; <= length.
    // The chain hash of the full committed blocks and the serial of the cached block equal to
    // the last of them: where the next full block joins the chain.
    uint64_t chain_hash = kHashSeed;
    uint64_t chain_serial = 0;
    bool cacheable = true;  // False after a hash collision: later blocks could never match.
  };

  int64_t BlocksNeeded(const Sequence& seq, int64_t n) const;
  std::span<const int32_t> StoredTokens(int32_t block) const;
  // Whether `block` is cached with these tokens after the block of serial `parent_serial`.
  bool Holds(int32_t block, std::span<const int32_t> tokens, uint64_t parent_serial) const;
  int32_t Allocate();
  void Release(int32_t block);
  void RegisterFullBlock(Sequence& seq, int32_t block);
  void LruPushBack(int32_t block);
  void LruRemove(int32_t block);

  int64_t block_size_;
  std::vector<Block> blocks_;
  std::vector<int32_t> tokens_;  // (n_blocks, block_size): the committed token of every row.
  std::vector<int32_t> free_;    // Uncached free blocks; the next one to hand out is last.
  int32_t lru_head_ = -1;        // Evictable blocks, least recently used first.
  int32_t lru_tail_ = -1;
  int64_t n_evictable_ = 0;
  std::unordered_map<uint64_t, int32_t> cached_;  // Chain hash -> block.
  std::unordered_map<int64_t, Sequence> sequences_;
  uint64_t next_serial_ = 1;
  PrefixCacheStats stats_;
};

}  // namespace slimlm::serve

#endif  // SLIMLM_SERVE_KV_BLOCK_POOL_H_

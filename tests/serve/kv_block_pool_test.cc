// The KV block pool on hand-traced cases whose block ids are known, and a randomized run checked
// after every step against a model of what the KV memory would hold.
#include "slimlm/serve/kv_block_pool.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/core/hash.h"

namespace slimlm::serve {
namespace {

using Table = std::vector<int32_t>;

Table TableOf(const KvBlockPool& pool, int64_t id) {
  const std::span<const int32_t> table = pool.BlockTable(id);
  return Table(table.begin(), table.end());
}

// Tokens first, first + 1, ...
std::vector<int32_t> Iota(int64_t n, int32_t first) {
  std::vector<int32_t> tokens(n);
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

// Adds sequence `id` with `prompt` through the prefix cache, reserves and commits the rest of
// the prompt, and returns how many positions were reused.
int64_t Prefill(KvBlockPool& pool, int64_t id, const std::vector<int32_t>& prompt) {
  Result<int64_t> reused = pool.AddSequenceWithPrefix(id, prompt);
  EXPECT_TRUE(reused.ok()) << reused.status().message();
  if (!reused.ok()) return -1;
  const std::span<const int32_t> rest = std::span<const int32_t>(prompt).subspan(*reused);
  const Status appended = pool.AppendSlots(id, static_cast<int64_t>(rest.size()));
  EXPECT_TRUE(appended.ok()) << appended.message();
  const Status committed = pool.CommitTokens(id, rest);
  EXPECT_TRUE(committed.ok()) << committed.message();
  return *reused;
}

TEST(KvBlockPool, BlockTablesCrossBlockBoundaries) {
  KvBlockPool pool(8, 4);
  ASSERT_TRUE(pool.AddSequence(1).ok());
  EXPECT_EQ(TableOf(pool, 1), Table{});
  ASSERT_TRUE(pool.AppendSlots(1, 3).ok());
  EXPECT_EQ(TableOf(pool, 1), Table{0});
  ASSERT_TRUE(pool.AppendSlots(1, 1).ok());  // Position 3: the last row of block 0.
  EXPECT_EQ(TableOf(pool, 1), Table{0});
  ASSERT_TRUE(pool.AppendSlots(1, 1).ok());  // Position 4 starts block 1.
  EXPECT_EQ(TableOf(pool, 1), (Table{0, 1}));
  EXPECT_EQ(pool.Length(1), 5);

  ASSERT_TRUE(pool.AddSequence(2).ok());
  ASSERT_TRUE(pool.AppendSlots(2, 9).ok());
  EXPECT_EQ(TableOf(pool, 2), (Table{2, 3, 4}));
  ASSERT_TRUE(pool.AppendSlots(2, 0).ok());
  EXPECT_EQ(TableOf(pool, 2), (Table{2, 3, 4}));
  ASSERT_TRUE(pool.AppendSlots(1, 4).ok());  // Positions 5..8: the rest of block 1, then 5.
  EXPECT_EQ(TableOf(pool, 1), (Table{0, 1, 5}));
  EXPECT_EQ(pool.Length(1), 9);
  EXPECT_EQ(pool.Length(2), 9);

  EXPECT_EQ(pool.FreeBlocks(), 2);
  EXPECT_EQ(pool.LiveSequences(), 2);
  EXPECT_DOUBLE_EQ(pool.Usage(), 6.0 / 8.0);
  EXPECT_TRUE(pool.CheckConsistency().ok()) << pool.CheckConsistency().message();
}

TEST(KvBlockPool, ExhaustionLeavesStateUnchanged) {
  KvBlockPool pool(4, 4);
  ASSERT_TRUE(pool.AddSequence(1).ok());
  ASSERT_TRUE(pool.AddSequence(2).ok());
  ASSERT_TRUE(pool.AppendSlots(1, 10).ok());
  ASSERT_TRUE(pool.AppendSlots(2, 4).ok());
  EXPECT_EQ(pool.FreeBlocks(), 0);

  EXPECT_TRUE(pool.CanAppend(1, 2));  // Rows 10 and 11 of block 2 are still free.
  EXPECT_FALSE(pool.CanAppend(1, 3));
  EXPECT_TRUE(pool.CanAppend(2, 0));
  EXPECT_FALSE(pool.CanAppend(2, 1));
  const Status s = pool.AppendSlots(1, 3);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "kv block pool: sequence 1 needs 1 more blocks, 0 are free");
  EXPECT_EQ(pool.AppendSlots(2, std::numeric_limits<int64_t>::max()).code(),
            StatusCode::kResourceExhausted);

  EXPECT_EQ(pool.Length(1), 10);
  EXPECT_EQ(TableOf(pool, 1), (Table{0, 1, 2}));
  EXPECT_EQ(pool.Length(2), 4);
  EXPECT_EQ(TableOf(pool, 2), Table{3});
  ASSERT_TRUE(pool.AppendSlots(1, 2).ok());
  EXPECT_EQ(TableOf(pool, 1), (Table{0, 1, 2}));
  EXPECT_EQ(pool.Length(1), 12);
  EXPECT_TRUE(pool.CheckConsistency().ok()) << pool.CheckConsistency().message();
}

TEST(KvBlockPool, FreeReturnsBlocksAtOnce) {
  KvBlockPool pool(6, 4);
  ASSERT_TRUE(pool.AddSequence(7).ok());
  ASSERT_TRUE(pool.AddSequence(8).ok());
  ASSERT_TRUE(pool.AppendSlots(7, 13).ok());
  ASSERT_TRUE(pool.AppendSlots(8, 6).ok());
  EXPECT_DOUBLE_EQ(pool.Usage(), 1.0);

  pool.FreeSequence(7);
  EXPECT_EQ(pool.FreeBlocks(), 4);
  EXPECT_DOUBLE_EQ(pool.Usage(), 2.0 / 6.0);
  pool.FreeSequence(8);
  pool.FreeSequence(8);  // Unknown now: ignored.
  EXPECT_EQ(pool.FreeBlocks(), 6);
  EXPECT_DOUBLE_EQ(pool.Usage(), 0.0);
  EXPECT_EQ(pool.LiveSequences(), 0);
  EXPECT_FALSE(pool.Contains(7));
  EXPECT_EQ(pool.RefCount(0), 0);

  ASSERT_TRUE(pool.AddSequence(7).ok());  // The id may be used again.
  ASSERT_TRUE(pool.AppendSlots(7, 24).ok());
  EXPECT_EQ(pool.FreeBlocks(), 0);
  EXPECT_TRUE(pool.CheckConsistency().ok()) << pool.CheckConsistency().message();
}

TEST(KvBlockPool, MisuseReturnsErrors) {
  KvBlockPool pool(4, 4);
  ASSERT_TRUE(pool.AddSequence(1).ok());
  EXPECT_EQ(pool.AddSequence(1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(pool.AddSequenceWithPrefix(1, Iota(5, 0)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(pool.AppendSlots(1, -1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(pool.AppendSlots(2, 1).code(), StatusCode::kNotFound);
  EXPECT_EQ(pool.CommitTokens(2, Iota(1, 0)).code(), StatusCode::kNotFound);
  EXPECT_FALSE(pool.CanAppend(2, 1));
  EXPECT_FALSE(pool.CanAppend(1, -1));
  EXPECT_EQ(TableOf(pool, 2), Table{});
  EXPECT_EQ(pool.Length(2), 0);
  EXPECT_EQ(pool.RefCount(-1), 0);
  EXPECT_EQ(pool.RefCount(4), 0);

  ASSERT_TRUE(pool.AppendSlots(1, 2).ok());
  const Status s = pool.CommitTokens(1, Iota(3, 0));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "kv block pool: sequence 1: 3 tokens to commit, 2 reserved positions to hold them");
  EXPECT_EQ(pool.prefix_stats().requests, 0);
  EXPECT_TRUE(pool.CheckConsistency().ok()) << pool.CheckConsistency().message();

  EXPECT_EQ(KvBlockPool::Create(4, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(KvBlockPool::Create(-1, 4).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(KvBlockPool::Create(int64_t{1} << 30, 4).status().code(), StatusCode::kInvalidArgument);
  Result<KvBlockPool> empty = KvBlockPool::Create(0, 16);
  ASSERT_TRUE(empty.ok());
  EXPECT_DOUBLE_EQ(empty->Usage(), 0.0);
  ASSERT_TRUE(empty->AddSequence(1).ok());
  EXPECT_EQ(empty->AppendSlots(1, 1).code(), StatusCode::kResourceExhausted);
}

TEST(KvBlockPool, ReusesOnlyFullBlocksOfASharedPrefix) {
  KvBlockPool pool(8, 4);
  const std::vector<int32_t> prompt = Iota(10, 100);  // 2.5 blocks.
  EXPECT_EQ(Prefill(pool, 1, prompt), 0);
  EXPECT_EQ(TableOf(pool, 1), (Table{0, 1, 2}));
  EXPECT_EQ(pool.CachedBlocks(), 2);  // Block 2 holds 2 of 4 rows: never shared.

  const PrefixMatch match = pool.MatchPrefix(prompt);
  EXPECT_EQ(match.blocks, (Table{0, 1}));
  EXPECT_EQ(match.n_tokens, 8);
  EXPECT_EQ(match.n_evictable, 0);
  EXPECT_EQ(pool.prefix_stats().requests, 1);  // MatchPrefix counts nothing.

  Result<int64_t> reused = pool.AddSequenceWithPrefix(2, prompt);
  ASSERT_TRUE(reused.ok());
  EXPECT_EQ(*reused, 8);
  EXPECT_EQ(TableOf(pool, 2), (Table{0, 1}));
  EXPECT_EQ(pool.Length(2), 8);
  EXPECT_EQ(pool.RefCount(0), 2);
  EXPECT_EQ(pool.RefCount(1), 2);
  EXPECT_EQ(pool.RefCount(2), 1);
  // The rest of the prompt starts a new block: the shared ones are never written.
  ASSERT_TRUE(pool.AppendSlots(2, 2).ok());
  EXPECT_EQ(TableOf(pool, 2), (Table{0, 1, 3}));
  ASSERT_TRUE(pool.CommitTokens(2, std::span<const int32_t>(prompt).subspan(8)).ok());
  EXPECT_EQ(pool.FreeBlocks(), 4);

  const PrefixCacheStats& stats = pool.prefix_stats();
  EXPECT_EQ(stats.queries, 20);
  EXPECT_EQ(stats.hits, 8);
  EXPECT_EQ(stats.requests, 2);
  EXPECT_EQ(stats.requests_hit, 1);

  // A prompt of exactly two blocks reuses one: its last token must be computed for its logits.
  EXPECT_EQ(pool.MatchPrefix(Iota(8, 100)).n_tokens, 4);
  EXPECT_EQ(pool.MatchPrefix(Iota(9, 100)).n_tokens, 8);
  EXPECT_EQ(pool.MatchPrefix(Iota(3, 100)).n_tokens, 0);
  EXPECT_EQ(pool.MatchPrefix({}).n_tokens, 0);
  EXPECT_TRUE(pool.CheckConsistency().ok()) << pool.CheckConsistency().message();
}

TEST(KvBlockPool, ADifferentTokenBreaksTheRestOfTheChain) {
  KvBlockPool pool(16, 4);
  const std::vector<int32_t> prompt = Iota(13, 0);
  EXPECT_EQ(Prefill(pool, 1, prompt), 0);
  EXPECT_EQ(pool.CachedBlocks(), 3);
  EXPECT_EQ(pool.MatchPrefix(prompt).n_tokens, 12);

  std::vector<int32_t> changed = prompt;
  changed[5] = 99;  // Block 1; blocks 0 and 2 are unchanged.
  EXPECT_EQ(pool.MatchPrefix(changed).blocks, Table{0});
  changed[1] = 99;  // Block 0 too.
  EXPECT_EQ(pool.MatchPrefix(changed).n_tokens, 0);
  // Block 1's tokens at the start of a prompt: equal content, different prefix.
  std::vector<int32_t> shifted(prompt.begin() + 4, prompt.end());
  EXPECT_EQ(pool.MatchPrefix(shifted).n_tokens, 0);

  changed = prompt;
  changed[5] = 99;
  EXPECT_EQ(Prefill(pool, 2, changed), 4);
  EXPECT_EQ(TableOf(pool, 2), (Table{0, 4, 5, 6}));
  EXPECT_EQ(pool.CachedBlocks(), 5);  // 4 and 5 are new chain links; 6 is partly full.
  EXPECT_EQ(pool.prefix_stats().hits, 4);
  EXPECT_TRUE(pool.CheckConsistency().ok()) << pool.CheckConsistency().message();
}

TEST(KvBlockPool, CachesBlocksAsDecodeFillsThem) {
  KvBlockPool pool(4, 2);
  ASSERT_TRUE(pool.AddSequence(1).ok());
  for (int32_t t = 0; t < 5; ++t) {
    ASSERT_TRUE(pool.AppendSlots(1, 1).ok());
    ASSERT_TRUE(pool.CommitTokens(1, std::vector<int32_t>{10 + t}).ok());
    EXPECT_EQ(pool.CachedBlocks(), (t + 1) / 2) << "after token " << t;
  }
  EXPECT_EQ(pool.MatchPrefix(Iota(6, 10)).blocks, (Table{0, 1}));
  // Reserved but not yet committed positions are not cached.
  ASSERT_TRUE(pool.AppendSlots(1, 1).ok());
  EXPECT_EQ(pool.CachedBlocks(), 2);
  EXPECT_TRUE(pool.CheckConsistency().ok()) << pool.CheckConsistency().message();
}

TEST(KvBlockPool, TwinBlocksPrefilledTogetherKeepOneCacheEntry) {
  KvBlockPool pool(8, 4);
  const std::vector<int32_t> prompt = Iota(5, 0);
  // Both sequences look the prompt up before either has written it.
  ASSERT_EQ(*pool.AddSequenceWithPrefix(1, prompt), 0);
  ASSERT_EQ(*pool.AddSequenceWithPrefix(2, prompt), 0);
  for (int64_t id : {1, 2}) {
    ASSERT_TRUE(pool.AppendSlots(id, 5).ok());
    ASSERT_TRUE(pool.CommitTokens(id, prompt).ok());
  }
  EXPECT_EQ(TableOf(pool, 1), (Table{0, 1}));
  EXPECT_EQ(TableOf(pool, 2), (Table{2, 3}));
  EXPECT_EQ(pool.CachedBlocks(), 1);  // Block 0; its twin 2 stays private.

  // Sequence 2's next full block continues the chain through block 0.
  ASSERT_TRUE(pool.AppendSlots(2, 3).ok());
  ASSERT_TRUE(pool.CommitTokens(2, Iota(3, 5)).ok());
  EXPECT_EQ(pool.MatchPrefix(Iota(9, 0)).blocks, (Table{0, 3}));

  // Freed, the private twin goes to the free list, the cached ones become evictable.
  pool.FreeSequence(2);
  EXPECT_EQ(pool.EvictableBlocks(), 1);  // Block 3.
  EXPECT_EQ(pool.FreeBlocks(), 6);
  EXPECT_TRUE(pool.CheckConsistency().ok()) << pool.CheckConsistency().message();
}

TEST(KvBlockPool, EvictsCachedBlocksLeastRecentlyUsedAfterFreshOnesRunOut) {
  KvBlockPool pool(4, 2);
  const std::vector<int32_t> a = {1, 2, 3};  // One full block and one partly full.
  const std::vector<int32_t> b = {7, 8, 9};
  EXPECT_EQ(Prefill(pool, 1, a), 0);
  EXPECT_EQ(Prefill(pool, 2, b), 0);
  EXPECT_EQ(TableOf(pool, 1), (Table{0, 1}));
  EXPECT_EQ(TableOf(pool, 2), (Table{2, 3}));
  pool.FreeSequence(1);
  pool.FreeSequence(2);
  EXPECT_EQ(pool.FreeBlocks(), 4);
  EXPECT_EQ(pool.EvictableBlocks(), 2);  // 0 (a) then 2 (b); 1 and 3 were partly full.
  EXPECT_EQ(pool.CachedBlocks(), 2);
  EXPECT_DOUBLE_EQ(pool.Usage(), 0.0);

  // Reusing a's block and letting it go again makes it the most recently used.
  EXPECT_EQ(Prefill(pool, 3, a), 2);
  EXPECT_EQ(TableOf(pool, 3), (Table{0, 3}));
  pool.FreeSequence(3);
  EXPECT_EQ(pool.EvictableBlocks(), 2);

  ASSERT_TRUE(pool.AddSequence(4).ok());
  ASSERT_TRUE(pool.AppendSlots(4, 4).ok());  // Takes the never-used blocks first.
  EXPECT_EQ(TableOf(pool, 4), (Table{3, 1}));
  EXPECT_EQ(pool.CachedBlocks(), 2);
  EXPECT_EQ(pool.prefix_stats().evictions, 0);

  ASSERT_TRUE(pool.AppendSlots(4, 2).ok());  // Evicts b's block, the least recently used.
  EXPECT_EQ(TableOf(pool, 4), (Table{3, 1, 2}));
  EXPECT_EQ(pool.CachedBlocks(), 1);
  EXPECT_EQ(pool.EvictableBlocks(), 1);
  EXPECT_EQ(pool.MatchPrefix(b).n_tokens, 0);
  EXPECT_EQ(pool.MatchPrefix(a).blocks, Table{0});
  EXPECT_EQ(pool.prefix_stats().evictions, 1);

  ASSERT_TRUE(pool.AppendSlots(4, 1).ok());  // Then a's.
  EXPECT_EQ(TableOf(pool, 4), (Table{3, 1, 2, 0}));
  EXPECT_EQ(pool.CachedBlocks(), 0);
  EXPECT_EQ(pool.MatchPrefix(a).n_tokens, 0);
  EXPECT_EQ(pool.FreeBlocks(), 0);
  EXPECT_EQ(pool.prefix_stats().evictions, 2);
  EXPECT_TRUE(pool.CheckConsistency().ok()) << pool.CheckConsistency().message();
}

TEST(KvBlockPool, FreesASequenceLastBlockFirstSoItsPrefixStaysLonger) {
  KvBlockPool pool(3, 2);
  EXPECT_EQ(Prefill(pool, 1, Iota(5, 0)), 0);  // Blocks 0, 1 full; 2 partly full.
  pool.FreeSequence(1);
  ASSERT_TRUE(pool.AddSequence(2).ok());
  ASSERT_TRUE(pool.AppendSlots(2, 4).ok());  // Block 2, then evicts block 1, not block 0.
  EXPECT_EQ(TableOf(pool, 2), (Table{2, 1}));
  EXPECT_EQ(pool.MatchPrefix(Iota(5, 0)).blocks, Table{0});
}

TEST(KvBlockPool, FreeingOneOfTwoSharersKeepsTheBlock) {
  KvBlockPool pool(6, 4);
  const std::vector<int32_t> prompt = Iota(9, 50);
  EXPECT_EQ(Prefill(pool, 1, prompt), 0);
  EXPECT_EQ(Prefill(pool, 2, prompt), 8);
  EXPECT_EQ(TableOf(pool, 1), (Table{0, 1, 2}));
  EXPECT_EQ(TableOf(pool, 2), (Table{0, 1, 3}));
  EXPECT_EQ(pool.FreeBlocks(), 2);

  pool.FreeSequence(1);
  EXPECT_EQ(pool.RefCount(0), 1);
  EXPECT_EQ(pool.RefCount(1), 1);
  EXPECT_EQ(pool.RefCount(2), 0);
  EXPECT_EQ(pool.FreeBlocks(), 3);  // Only block 2 came back.
  EXPECT_EQ(pool.EvictableBlocks(), 0);
  EXPECT_EQ(TableOf(pool, 2), (Table{0, 1, 3}));
  EXPECT_EQ(pool.MatchPrefix(prompt).n_tokens, 8);

  pool.FreeSequence(2);
  EXPECT_EQ(pool.RefCount(0), 0);
  EXPECT_EQ(pool.EvictableBlocks(), 2);
  EXPECT_EQ(pool.FreeBlocks(), 6);
  EXPECT_EQ(pool.MatchPrefix(prompt).n_evictable, 2);
  EXPECT_TRUE(pool.CheckConsistency().ok()) << pool.CheckConsistency().message();
}

// A block of 4 tokens whose chain hash at the start of a prompt equals `block`'s. It mirrors the
// pool's hash (HashBytes seeded with Mix64 of the hash before the block) and inverts FNV-1a: a
// block is two 64-bit words w0, w1, hashed as ((m ^ w0) * p ^ w1) * p.
std::vector<int32_t> CollidingBlock(const std::vector<int32_t>& block) {
  constexpr uint64_t kPrime = 0x100000001b3ULL;
  const uint64_t m = Mix64(kHashSeed);
  uint64_t w[2], v[2];
  std::memcpy(w, block.data(), sizeof(w));
  v[0] = w[0] ^ 1;
  v[1] = ((m ^ w[0]) * kPrime) ^ w[1] ^ ((m ^ v[0]) * kPrime);
  std::vector<int32_t> colliding(4);
  std::memcpy(colliding.data(), v, sizeof(v));
  return colliding;
}

std::vector<int32_t> Concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(KvBlockPool, HashCollisionsNeverShareADifferentBlock) {
  const std::vector<int32_t> x = {11, 12, 13, 14};
  const std::vector<int32_t> y = CollidingBlock(x);
  ASSERT_NE(x, y);
  ASSERT_EQ(HashBytes(x.data(), 16, Mix64(kHashSeed)), HashBytes(y.data(), 16, Mix64(kHashSeed)));

  KvBlockPool pool(8, 4);
  EXPECT_EQ(Prefill(pool, 1, Concat(x, {0})), 0);
  EXPECT_EQ(pool.CachedBlocks(), 1);
  EXPECT_EQ(pool.MatchPrefix(Concat(y, {0})).n_tokens, 0);  // Same hash, other tokens.
  EXPECT_EQ(Prefill(pool, 2, Concat(y, Iota(5, 0))), 0);
  // y's slot was taken, so neither y nor anything after it is cached.
  EXPECT_EQ(pool.CachedBlocks(), 1);
  EXPECT_EQ(pool.MatchPrefix(x).n_tokens, 0);
  EXPECT_EQ(pool.MatchPrefix(Concat(x, {0})).blocks, Table{0});
  EXPECT_TRUE(pool.CheckConsistency().ok()) << pool.CheckConsistency().message();
}

TEST(KvBlockPool, ABlockMatchesOnlyAfterTheBlockItWasComputedAfter) {
  // z was computed after y; y is evicted and x, which has y's hash, takes its slot. The chain
  // hash of [x, z] is then z's key, but z's rows were computed for [y, z].
  const std::vector<int32_t> x = {11, 12, 13, 14};
  const std::vector<int32_t> y = CollidingBlock(x);
  const std::vector<int32_t> z = {21, 22, 23, 24};
  const std::vector<int32_t> yz = Concat(Concat(y, z), {0});
  KvBlockPool pool(4, 4);
  ASSERT_EQ(*pool.AddSequenceWithPrefix(1, yz), 0);
  ASSERT_EQ(*pool.AddSequenceWithPrefix(2, yz), 0);
  ASSERT_TRUE(pool.AppendSlots(1, 4).ok());
  ASSERT_TRUE(pool.CommitTokens(1, y).ok());  // Block 0 caches y.
  ASSERT_TRUE(pool.AppendSlots(2, 9).ok());
  ASSERT_TRUE(pool.CommitTokens(2, yz).ok());  // Block 1 twins y; block 2 caches z after y.
  EXPECT_EQ(pool.CachedBlocks(), 2);
  EXPECT_EQ(pool.MatchPrefix(yz).blocks, (Table{0, 2}));

  pool.FreeSequence(1);
  ASSERT_TRUE(pool.AddSequence(3).ok());
  ASSERT_TRUE(pool.AppendSlots(3, 4).ok());  // Evicts y.
  EXPECT_EQ(TableOf(pool, 3), Table{0});
  ASSERT_TRUE(pool.CommitTokens(3, x).ok());
  pool.FreeSequence(2);
  EXPECT_EQ(pool.CachedBlocks(), 2);  // x in block 0 and z in block 2.
  EXPECT_EQ(pool.MatchPrefix(Concat(Concat(x, z), {0})).blocks, Table{0});
  EXPECT_TRUE(pool.CheckConsistency().ok()) << pool.CheckConsistency().message();
}

// What a live sequence should hold, and what the KV memory rows would contain.
struct ModelSequence {
  std::vector<int32_t> tokens;  // Committed tokens, then `pending` reserved positions.
  int64_t pending = 0;
  std::vector<int32_t> prompt;  // The next positions' tokens are the prompt's, then random ones.
};

TEST(KvBlockPool, RandomOperationsKeepInvariants) {
  constexpr int64_t kBlocks = 48;
  constexpr int64_t kBlockSize = 4;
  constexpr int64_t kIds = 20;
  KvBlockPool pool(kBlocks, kBlockSize);
  // memory[b * kBlockSize + row]: the token whose KV the row holds (-1: never written).
  std::vector<int32_t> memory(kBlocks * kBlockSize, -1);
  std::map<int64_t, ModelSequence> live;
  // Prompts start with one of a few shared prefixes so that the cache gets hits.
  std::vector<std::vector<int32_t>> prefixes = {Iota(9, 1000), Iota(6, 2000), Iota(13, 3000)};
  int64_t expected_queries = 0, expected_hits = 0, exhausted = 0;
  uint64_t counter = 0;
  auto random = [&](uint64_t n) { return Mix64(12345 + counter++) % n; };

  // Writes tokens at the sequence's next reserved positions, in the pool and in memory.
  auto commit = [&](int64_t id, ModelSequence& seq, int64_t n) {
    const std::vector<int32_t> table = TableOf(pool, id);
    std::vector<int32_t> tokens;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t pos = static_cast<int64_t>(seq.tokens.size());
      // Generated tokens come from a small vocabulary, so that sequences write equal blocks.
      const int32_t token = pos < static_cast<int64_t>(seq.prompt.size())
                                ? seq.prompt[pos]
                                : static_cast<int32_t>(random(3));
      const int32_t block = table[pos / kBlockSize];
      ASSERT_EQ(pool.RefCount(block), 1) << "write into a shared block";
      memory[block * kBlockSize + pos % kBlockSize] = token;
      seq.tokens.push_back(token);
      tokens.push_back(token);
    }
    seq.pending -= n;
    ASSERT_TRUE(pool.CommitTokens(id, tokens).ok());
  };

  for (int step = 0; step < 4000; ++step) {
    const int64_t id = static_cast<int64_t>(random(kIds));
    const auto it = live.find(id);
    const uint64_t op = random(10);
    if (it == live.end()) {
      if (op < 3) {
        ASSERT_TRUE(pool.AddSequence(id).ok());
        live[id] = ModelSequence();
      } else {
        std::vector<int32_t> prompt = prefixes[random(prefixes.size())];
        const int64_t extra = static_cast<int64_t>(random(8));
        for (int64_t i = 0; i < extra; ++i) prompt.push_back(static_cast<int32_t>(random(3)));
        Result<int64_t> reused = pool.AddSequenceWithPrefix(id, prompt);
        ASSERT_TRUE(reused.ok());
        ASSERT_EQ(*reused % kBlockSize, 0);
        ASSERT_LT(*reused, static_cast<int64_t>(prompt.size()));
        const std::vector<int32_t> table = TableOf(pool, id);
        // The reused rows hold exactly this prompt's tokens.
        for (int64_t p = 0; p < *reused; ++p) {
          ASSERT_EQ(memory[table[p / kBlockSize] * kBlockSize + p % kBlockSize], prompt[p]);
        }
        expected_queries += static_cast<int64_t>(prompt.size());
        expected_hits += *reused;
        ModelSequence seq;
        seq.tokens.assign(prompt.begin(), prompt.begin() + *reused);
        seq.prompt = prompt;
        live[id] = seq;
      }
    } else if (op < 2) {
      pool.FreeSequence(id);
      live.erase(it);
    } else if (op < 3 && it->second.pending > 0) {
      ASSERT_NO_FATAL_FAILURE(commit(id, it->second, it->second.pending));
    } else {
      ModelSequence& seq = it->second;
      const int64_t n = static_cast<int64_t>(random(10));
      const int64_t length = static_cast<int64_t>(seq.tokens.size()) + seq.pending;
      const int64_t table_size = static_cast<int64_t>(pool.BlockTable(id).size());
      const int64_t needed =
          std::max<int64_t>(0, (length + n + kBlockSize - 1) / kBlockSize - table_size);
      const bool fits = needed <= pool.FreeBlocks();
      ASSERT_EQ(pool.CanAppend(id, n), fits);
      const std::vector<int32_t> before = TableOf(pool, id);
      const Status s = pool.AppendSlots(id, n);
      if (fits) {
        ASSERT_TRUE(s.ok()) << s.message();
        seq.pending += n;
        // Else the positions wait for a later step.
        if (op < 8) {
          ASSERT_NO_FATAL_FAILURE(commit(id, seq, seq.pending));
        }
      } else {
        ASSERT_EQ(s.code(), StatusCode::kResourceExhausted);
        ASSERT_EQ(TableOf(pool, id), before);
        ++exhausted;
        pool.FreeSequence(id);  // Preempted, as the scheduler would.
        live.erase(it);
      }
    }

    // Invariants after every step.
    const Status consistent = pool.CheckConsistency();
    ASSERT_TRUE(consistent.ok()) << "step " << step << ": " << consistent.message();
    ASSERT_EQ(pool.LiveSequences(), static_cast<int64_t>(live.size()));
    std::vector<int32_t> refs(kBlocks, 0);
    int64_t ref_sum = 0;
    for (const auto& [sid, seq] : live) {
      const std::vector<int32_t> table = TableOf(pool, sid);
      const int64_t length = static_cast<int64_t>(seq.tokens.size()) + seq.pending;
      ASSERT_EQ(pool.Length(sid), length);
      ASSERT_EQ(static_cast<int64_t>(table.size()), (length + kBlockSize - 1) / kBlockSize);
      for (int32_t b : table) ++refs[b];
      // Nothing overwrote a live sequence's committed rows.
      for (size_t p = 0; p < seq.tokens.size(); ++p) {
        ASSERT_EQ(memory[table[p / kBlockSize] * kBlockSize + p % kBlockSize], seq.tokens[p]);
      }
    }
    int64_t used = 0;
    for (int32_t b = 0; b < kBlocks; ++b) {
      ASSERT_EQ(pool.RefCount(b), refs[b]) << "block " << b;
      ref_sum += pool.RefCount(b);
      if (refs[b] > 0) ++used;
    }
    int64_t table_sum = 0;
    for (const auto& [sid, seq] : live) table_sum += pool.BlockTable(sid).size();
    ASSERT_EQ(ref_sum, table_sum);
    ASSERT_EQ(pool.FreeBlocks() + used, kBlocks);
    ASSERT_LE(pool.EvictableBlocks(), pool.CachedBlocks());
    ASSERT_DOUBLE_EQ(pool.Usage(), static_cast<double>(used) / kBlocks);
    ASSERT_EQ(pool.prefix_stats().queries, expected_queries);
    ASSERT_EQ(pool.prefix_stats().hits, expected_hits);
  }
  // The run exercised what it is meant to.
  EXPECT_GT(pool.prefix_stats().hits, 3000);
  EXPECT_GT(pool.prefix_stats().evictions, 1000);
  EXPECT_GT(exhausted, 200);
}

}  // namespace
}  // namespace slimlm::serve

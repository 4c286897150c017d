#include "slimlm/core/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

namespace slimlm {
namespace {

std::string ErrnoText() { return std::strerror(errno); }

// Temporary files of writers in progress, removed if SIGINT, SIGTERM or SIGHUP ends the process
// (destructors do not run then). Fixed-size storage: the handler may only touch memory that is
// already there and call async-signal-safe functions.
constexpr int kMaxTempFiles = 64;
constexpr size_t kMaxTempPath = 4096;
char g_temp_paths[kMaxTempFiles][kMaxTempPath];
std::atomic<bool> g_temp_used[kMaxTempFiles];
constexpr int kCleanupSignals[] = {SIGINT, SIGTERM, SIGHUP};

void RemoveTempFilesAndDie(int sig) {
  for (int i = 0; i < kMaxTempFiles; ++i) {
    if (g_temp_used[i].load()) ::unlink(g_temp_paths[i]);
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void InstallCleanupHandlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int sig : kCleanupSignals) {
      struct sigaction current;
      // Only where nobody else handles the signal (a server installs its own shutdown).
      if (::sigaction(sig, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
        struct sigaction action = {};
        action.sa_handler = RemoveTempFilesAndDie;
        sigemptyset(&action.sa_mask);
        ::sigaction(sig, &action, nullptr);
      }
    }
  });
}

// Returns the slot holding `path`, or -1 when all are taken (the file is then only removed by
// the writer's destructor).
int RegisterTempFile(const std::string& path) {
  if (path.size() >= kMaxTempPath) return -1;
  InstallCleanupHandlers();
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  for (int i = 0; i < kMaxTempFiles; ++i) {
    if (!g_temp_used[i].load()) {
      std::memcpy(g_temp_paths[i], path.c_str(), path.size() + 1);
      g_temp_used[i].store(true);
      return i;
    }
  }
  return -1;
}

void UnregisterTempFile(int slot) {
  if (slot >= 0) g_temp_used[slot].store(false);
}

}  // namespace

namespace {

// The live mappings, begin -> end, so that ReleaseMappedPages only ever touches file pages:
// MADV_DONTNEED on anonymous memory would zero it.
std::mutex& MappingsMutex() {
  static std::mutex mu;
  return mu;
}
std::map<uintptr_t, uintptr_t>& Mappings() {
  static std::map<uintptr_t, uintptr_t> mappings;
  return mappings;
}

void Unmap(const uint8_t* data, size_t size) {
  if (data == nullptr) return;
  std::lock_guard<std::mutex> lock(MappingsMutex());
  Mappings().erase(reinterpret_cast<uintptr_t>(data));
  ::munmap(const_cast<uint8_t*>(data), size);
}

}  // namespace

void ReleaseMappedPages(const void* data, size_t bytes) {
  const auto begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t end = begin + bytes;
  std::lock_guard<std::mutex> lock(MappingsMutex());
  auto it = Mappings().upper_bound(begin);
  if (it == Mappings().begin()) return;
  --it;
  if (begin < it->first || end > it->second) return;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (begin + page - 1) / page * page;
  const uintptr_t last = end / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

Result<MappedFile> MappedFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFoundError("{}: no such file", path);
    return IoError("{}: cannot open: {}", path, ErrnoText());
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    Status s = IoError("{}: cannot stat: {}", path, ErrnoText());
    ::close(fd);
    return s;
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return InvalidArgumentError("{}: is a directory, expected a file", path);
  }
  MappedFile file;
  file.path_ = path;
  file.size_ = static_cast<size_t>(st.st_size);
  if (file.size_ > 0) {
    void* addr = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      Status s = IoError("{}: cannot map {} bytes: {}", path, file.size_, ErrnoText());
      ::close(fd);
      return s;
    }
    file.data_ = static_cast<const uint8_t*>(addr);
    std::lock_guard<std::mutex> lock(MappingsMutex());
    Mappings()[reinterpret_cast<uintptr_t>(addr)] = reinterpret_cast<uintptr_t>(addr) + file.size_;
  }
  ::close(fd);
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    Unmap(data_, size_);
    path_ = std::move(other.path_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() { Unmap(data_, size_); }

Result<std::string> ReadFileToString(const std::string& path) {
  if (IsDirectory(path)) return InvalidArgumentError("{}: is a directory, expected a file", path);
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    if (errno == ENOENT) return NotFoundError("{}: no such file", path);
    return IoError("{}: cannot open: {}", path, ErrnoText());
  }
  std::string out;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), f)) > 0) out.append(buffer, n);
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return IoError("{}: read failed", path);
  return out;
}

AtomicFileWriter::AtomicFileWriter(std::string path, std::string temp_path, FILE* file)
    : path_(std::move(path)), temp_path_(std::move(temp_path)), file_(file) {}

Result<std::unique_ptr<AtomicFileWriter>> AtomicFileWriter::Create(const std::string& path) {
  if (IsDirectory(path)) return InvalidArgumentError("{}: is a directory, expected a file", path);
  static std::atomic<int> counter{0};
  std::string temp =
      path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
  FILE* f = std::fopen(temp.c_str(), "wb");
  if (f == nullptr) return IoError("{}: cannot create: {}", path, ErrnoText());
  auto writer = std::unique_ptr<AtomicFileWriter>(new AtomicFileWriter(path, temp, f));
  writer->cleanup_slot_ = RegisterTempFile(temp);
  return writer;
}

AtomicFileWriter::~AtomicFileWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_) std::remove(temp_path_.c_str());
  UnregisterTempFile(cleanup_slot_);
}

Status AtomicFileWriter::Write(const void* data, size_t size) {
  if (file_ == nullptr) return FailedPreconditionError("{}: write after commit", path_);
  if (size == 0) return Status::Ok();
  if (std::fwrite(data, 1, size, file_) != size) {
    return IoError("{}: write failed: {}", path_, ErrnoText());
  }
  offset_ += size;
  return Status::Ok();
}

Status AtomicFileWriter::WriteZeros(size_t count) {
  static const char kZeros[256] = {};
  while (count > 0) {
    size_t n = count < sizeof(kZeros) ? count : sizeof(kZeros);
    SLIMLM_RETURN_IF_ERROR(Write(kZeros, n));
    count -= n;
  }
  return Status::Ok();
}

Status AtomicFileWriter::Commit() {
  if (file_ == nullptr) return FailedPreconditionError("{}: committed twice", path_);
  bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  ok = (std::fclose(file_) == 0) && ok;
  file_ = nullptr;
  if (!ok) return IoError("{}: write failed: {}", path_, ErrnoText());
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    return IoError("{}: cannot rename into place: {}", path_, ErrnoText());
  }
  committed_ = true;
  UnregisterTempFile(cleanup_slot_);
  cleanup_slot_ = -1;
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view contents) {
  SLIMLM_ASSIGN_OR_RETURN(auto writer, AtomicFileWriter::Create(path));
  SLIMLM_RETURN_IF_ERROR(writer->Write(contents));
  return writer->Commit();
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace slimlm

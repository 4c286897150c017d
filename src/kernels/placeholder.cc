// Replaced by the kernel sources.
namespace slimlm {}

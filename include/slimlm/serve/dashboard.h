// The live dashboard page (GET /dashboard): throughput, TTFT and inter-token latency
// percentiles, running and waiting requests, KV-cache use, CPU and memory over the last five
// minutes, refreshed every two seconds from the server's own /metrics. Self-contained: nothing
// is fetched from anywhere else.
#ifndef SLIMLM_SERVE_DASHBOARD_H_
#define SLIMLM_SERVE_DASHBOARD_H_

#include <string_view>

namespace slimlm::serve {

std::string_view DashboardHtml();

}  // namespace slimlm::serve

#endif  // SLIMLM_SERVE_DASHBOARD_H_

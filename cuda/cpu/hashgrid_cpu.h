// Radiant kernels: host entry points of the hash-grid encoding (forward with Jacobian, backward into the table).
#pragma once
#include "radiant/hashgrid.h"

namespace radiant {

// features (N, L*F); jacobian (N, L*F, 3) or nullptr.
void hashgrid_forward_cpu(const HashGridView& g, const float* table, const float* points, int64_t n, float* features,
                          float* jacobian);

// grad_table (rows, F) += ...; grad_features (N, L*F) and/or grad_jacobian (N, L*F, 3), either may be nullptr.
void hashgrid_backward_cpu(const HashGridView& g, const float* points, int64_t n, const float* grad_features,
                           const float* grad_jacobian, float* grad_table, int64_t table_rows);

}  // namespace radiant

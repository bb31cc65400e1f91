// Radiant kernels: binned-SAH BVH build (host) and the CPU closest-hit / any-hit loops over bvh.h.
#include "bvh_cpu.h"

#include "parallel.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace radiant {
namespace {

constexpr int kBins = 16;
constexpr int kMaxDepth = 60;  // binary depth; bounds the traversal stack (bvh.h kMaxStack)
constexpr float kTraversalCost = 3.0f;  // relative to one primitive test
constexpr int kMaxLeafSize = 2;  // leaves of <= 2 prims: ~1.3x path-tracing and incoherent-ray throughput vs 8

// Binary node of the SAH build, before collapsing to 4-wide: interior nodes have count 0, left child at
// index + 1 and right child at `offset`; leaves own prims [offset, offset + count).
struct BVHNode {
    float lo[3];
    int32_t offset;
    float hi[3];
    int32_t count;
};

struct BuildPrim {
    AABB box;
    Vec3 centroid;
    int32_t index;  // caller's primitive index
};

struct Builder {
    std::vector<BuildPrim>& prims;
    std::vector<BVHNode>& nodes;
    int max_leaf;

    int32_t make_leaf(int32_t begin, int32_t end, const AABB& box) {
        BVHNode n;
        for (int k = 0; k < 3; ++k) { n.lo[k] = box.lo[k]; n.hi[k] = box.hi[k]; }
        n.offset = begin;
        n.count = end - begin;
        nodes.push_back(n);
        return (int32_t)nodes.size() - 1;
    }

    // Builds the subtree over prims[begin, end) depth-first and returns its node index.
    int32_t build(int32_t begin, int32_t end, int depth) {
        AABB box, cbox;
        for (int32_t i = begin; i < end; ++i) {
            box.expand(prims[i].box);
            cbox.expand(prims[i].centroid);
        }
        int32_t n = end - begin;
        if (n <= 1 || depth >= kMaxDepth) return make_leaf(begin, end, box);

        // Binned SAH over the centroid bounds (Wald 2007), all three axes.
        float best_cost = kInf;
        int best_axis = -1, best_bin = -1;
        Vec3 cext = cbox.extent();
        for (int axis = 0; axis < 3; ++axis) {
            float ext = cext[axis];
            if (!(ext > 0.f)) continue;
            AABB bin_box[kBins];
            int bin_count[kBins] = {0};
            float scale = kBins / ext;
            float lo = cbox.lo[axis];
            for (int32_t i = begin; i < end; ++i) {
                int b = min_((int)((prims[i].centroid[axis] - lo) * scale), kBins - 1);
                bin_count[b]++;
                bin_box[b].expand(prims[i].box);
            }
            // Sweep from the right, then from the left, accumulating area * count.
            float right_cost[kBins];
            AABB acc;
            int cnt = 0;
            for (int b = kBins - 1; b > 0; --b) {
                acc.expand(bin_box[b]);
                cnt += bin_count[b];
                right_cost[b] = acc.half_area() * cnt;
            }
            acc = AABB();
            cnt = 0;
            for (int b = 0; b < kBins - 1; ++b) {
                acc.expand(bin_box[b]);
                cnt += bin_count[b];
                float cost = acc.half_area() * cnt + right_cost[b + 1];
                if (cnt > 0 && cnt < n && cost < best_cost) {
                    best_cost = cost;
                    best_axis = axis;
                    best_bin = b;
                }
            }
        }
        float parent_area = box.half_area();
        float split_cost = kTraversalCost + (parent_area > 0.f ? best_cost / parent_area : (float)n);
        int32_t mid;
        if (best_axis < 0) {
            // All centroids coincide: no spatial split helps; split by index to bound the leaf size.
            if (n <= max_leaf) return make_leaf(begin, end, box);
            mid = begin + n / 2;
        } else {
            if (n <= max_leaf && (float)n <= split_cost) return make_leaf(begin, end, box);
            float scale = kBins / cext[best_axis];
            float lo = cbox.lo[best_axis];
            auto it = std::partition(prims.begin() + begin, prims.begin() + end, [&](const BuildPrim& p) {
                return min_((int)((p.centroid[best_axis] - lo) * scale), kBins - 1) <= best_bin;
            });
            mid = (int32_t)(it - prims.begin());
            if (mid == begin || mid == end) mid = begin + n / 2;
        }
        int32_t self = make_leaf(begin, end, box);  // becomes interior below
        build(begin, mid, depth + 1);              // left child lands at self + 1
        int32_t right = build(mid, end, depth + 1);
        nodes[self].offset = right;
        nodes[self].count = 0;
        return self;
    }
};

float node_area(const BVHNode& n) {
    return AABB(Vec3(n.lo[0], n.lo[1], n.lo[2]), Vec3(n.hi[0], n.hi[1], n.hi[2])).half_area();
}

// Collapses the binary tree into 4-wide nodes: open the largest-area interior child until four slots are used
// (the usual BVH2 -> BVH4 collapse, e.g. Wald et al. 2008). Returns the index of the new node.
int32_t collapse(const std::vector<BVHNode>& bin, int32_t root, std::vector<BVHNode4>& out) {
    int32_t slots[4];
    int n = 0;
    if (bin[root].count > 0) {
        slots[n++] = root;
    } else {
        slots[n++] = root + 1;
        slots[n++] = bin[root].offset;
        while (n < 4) {
            int pick = -1;
            float best_area = -1.f;
            for (int k = 0; k < n; ++k) {
                if (bin[slots[k]].count == 0 && node_area(bin[slots[k]]) > best_area) {
                    best_area = node_area(bin[slots[k]]);
                    pick = k;
                }
            }
            if (pick < 0) break;
            int32_t opened = slots[pick];
            slots[pick] = opened + 1;
            slots[n++] = bin[opened].offset;
        }
    }
    int32_t self = (int32_t)out.size();
    out.emplace_back();
    for (int k = 0; k < 4; ++k) {
        BVHNode4& node = out[self];
        if (k >= n) {
            node.lo_x[k] = node.lo_y[k] = node.lo_z[k] = kInf;
            node.hi_x[k] = node.hi_y[k] = node.hi_z[k] = -kInf;
            node.child[k] = 0;
            node.count[k] = -1;
            continue;
        }
        const BVHNode& c = bin[slots[k]];
        node.lo_x[k] = c.lo[0]; node.lo_y[k] = c.lo[1]; node.lo_z[k] = c.lo[2];
        node.hi_x[k] = c.hi[0]; node.hi_y[k] = c.hi[1]; node.hi_z[k] = c.hi[2];
        if (c.count > 0) {
            node.child[k] = c.offset;
            node.count[k] = c.count;
        } else {
            int32_t child = collapse(bin, slots[k], out);  // may reallocate `out`
            out[self].child[k] = child;
            out[self].count[k] = 0;
        }
    }
    return self;
}

}  // namespace

BVHBuildResult bvh_build_cpu(const float* vertices, int64_t num_vertices, const int32_t* faces, int64_t num_faces,
                             const float* spheres, int64_t num_spheres, int max_leaf_size) {
    (void)num_vertices;
    std::vector<BuildPrim> prims;
    prims.reserve(num_faces + num_spheres);
    for (int64_t f = 0; f < num_faces; ++f) {
        BuildPrim p;
        for (int k = 0; k < 3; ++k) p.box.expand(Vec3::load(vertices + 3 * (int64_t)faces[3 * f + k]));
        p.centroid = p.box.center();
        p.index = (int32_t)f;
        prims.push_back(p);
    }
    for (int64_t s = 0; s < num_spheres; ++s) {
        BuildPrim p;
        Vec3 c = Vec3::load(spheres + 4 * s);
        float r = fabsf(spheres[4 * s + 3]);
        p.box = AABB(c - Vec3(r), c + Vec3(r));
        p.centroid = c;
        p.index = (int32_t)(num_faces + s);
        prims.push_back(p);
    }
    BVHBuildResult out;
    if (prims.empty()) return out;
    std::vector<BVHNode> binary;
    binary.reserve(prims.size());
    Builder builder{prims, binary, max_leaf_size > 0 ? max_leaf_size : kMaxLeafSize};
    builder.build(0, (int32_t)prims.size(), 0);
    out.nodes.reserve(binary.size() / 2 + 1);
    collapse(binary, 0, out.nodes);

    out.prim_ids.resize(prims.size());
    out.prim_data.assign(prims.size() * kPrimStride, 0.f);
    for (size_t i = 0; i < prims.size(); ++i) {
        int32_t id = prims[i].index;
        out.prim_ids[i] = id;
        float* dst = out.prim_data.data() + i * kPrimStride;
        if (id < num_faces) {
            for (int k = 0; k < 3; ++k)
                for (int c = 0; c < 3; ++c) dst[3 * k + c] = vertices[3 * (int64_t)faces[3 * (int64_t)id + k] + c];
        } else {
            for (int c = 0; c < 4; ++c) dst[c] = spheres[4 * (int64_t)(id - num_faces) + c];
            dst[4] = std::nanf("");  // sphere marker, see bvh.h
        }
    }
    return out;
}

namespace {

// One child slot of a 4-wide node during widening: its box and (child, count) as in BVHNode4.
struct Slot4 {
    AABB box;
    int32_t child, count;
};

struct Widener {
    const BVHNode4* nodes;
    const float* prims;
    int leaf_prims;
    WideBVH& out;
    std::vector<int64_t> first, total;  // per 4-wide node: first leaf-order primitive and primitive count below it
    std::vector<int64_t> spheres;       // per 4-wide node: spheres below it

    // Leaf ranges below a node are contiguous in leaf order (the build partitions in place), so a subtree's
    // primitives are [first, first + total).
    void count_prims(int32_t i) {
        int64_t lo = INT64_MAX, n = 0, ns = 0;
        for (int k = 0; k < 4; ++k) {
            int32_t c = nodes[i].child[k], cnt = nodes[i].count[k];
            if (cnt < 0) continue;
            if (cnt > 0) {
                lo = std::min<int64_t>(lo, c);
                n += cnt;
                for (int32_t j = c; j < c + cnt; ++j) ns += is_sphere_slot(prims + (int64_t)j * kPrimStride);
            } else {
                count_prims(c);
                lo = std::min(lo, first[c]);
                n += total[c];
                ns += spheres[c];
            }
        }
        first[i] = n > 0 ? lo : 0;
        total[i] = n;
        spheres[i] = ns;
    }

    std::vector<Slot4> children(int32_t i) const {
        std::vector<Slot4> s;
        for (int k = 0; k < 4; ++k) {
            const BVHNode4& n = nodes[i];
            if (n.count[k] < 0) continue;
            s.push_back(Slot4{AABB(Vec3(n.lo_x[k], n.lo_y[k], n.lo_z[k]), Vec3(n.hi_x[k], n.hi_y[k], n.hi_z[k])),
                              n.child[k], n.count[k]});
        }
        return s;
    }

    // Subtrees with spheres stay split: a sphere test costs more than the box test that culls it.
    bool is_leaf(const Slot4& s) const {
        return s.count > 0 || (total[s.child] <= leaf_prims && spheres[s.child] == 0);
    }

    // Packets of four over leaf-order primitives [begin, end): triangles first, then spheres. Returns the first.
    int32_t make_packets(int64_t begin, int64_t end, int32_t& count) {
        int32_t start = (int32_t)out.packets.size();
        for (int kind = 0; kind < 2; ++kind) {
            TriPacket pk;
            int lanes = 0;
            auto flush = [&]() {
                for (int k = lanes; k < 4; ++k) {
                    for (int j = 0; j < 9; ++j) pk.v[j][k] = std::nanf("");
                    pk.id[k] = -1;
                }
                pk.kind = kind;
                pk.pad[0] = pk.pad[1] = pk.pad[2] = 0;
                out.packets.push_back(pk);
                lanes = 0;
            };
            for (int64_t i = begin; i < end; ++i) {
                const float* p = prims + i * kPrimStride;
                if (is_sphere_slot(p) != (kind == 1)) continue;
                for (int j = 0; j < 9; ++j) pk.v[j][lanes] = kind == 0 ? p[j] : std::nanf("");
                pk.id[lanes++] = (int32_t)i;
                if (lanes == 4) flush();
            }
            if (lanes > 0) flush();
        }
        count = (int32_t)out.packets.size() - start;
        return start;
    }

    // The 8-wide slot for a 4-wide slot: a leaf of packets, or a new node whose children come from opening the
    // largest-area interior slots until eight are used (the collapse of bvh_build_cpu, one level up).
    void widen(const Slot4& slot, int32_t& child, int32_t& count) {
        if (is_leaf(slot)) {
            int64_t b = slot.count > 0 ? slot.child : first[slot.child];
            int64_t n = slot.count > 0 ? slot.count : total[slot.child];
            child = make_packets(b, b + n, count);
            return;
        }
        std::vector<Slot4> slots = children(slot.child);
        for (;;) {
            int pick = -1;
            float best = -1.f;
            for (int k = 0; k < (int)slots.size(); ++k) {
                if (is_leaf(slots[k])) continue;
                size_t grown = slots.size() - 1 + children(slots[k].child).size();
                if (grown <= (size_t)kWide && slots[k].box.half_area() > best) {
                    best = slots[k].box.half_area();
                    pick = k;
                }
            }
            if (pick < 0) break;
            std::vector<Slot4> sub = children(slots[pick].child);
            slots.erase(slots.begin() + pick);
            slots.insert(slots.end(), sub.begin(), sub.end());
        }
        int32_t self = (int32_t)out.nodes.size();
        out.nodes.emplace_back();
        for (int k = 0; k < kWide; ++k) {
            WideNode& n = out.nodes[self];
            if (k >= (int)slots.size()) {
                n.box[0][k] = n.box[2][k] = n.box[4][k] = kInf;
                n.box[1][k] = n.box[3][k] = n.box[5][k] = -kInf;
                n.child[k] = 0;
                n.count[k] = -1;
                continue;
            }
            const AABB& b = slots[k].box;
            n.box[0][k] = b.lo.x; n.box[1][k] = b.hi.x;
            n.box[2][k] = b.lo.y; n.box[3][k] = b.hi.y;
            n.box[4][k] = b.lo.z; n.box[5][k] = b.hi.z;
            int32_t c, cnt;
            widen(slots[k], c, cnt);  // may reallocate out.nodes
            out.nodes[self].child[k] = c;
            out.nodes[self].count[k] = cnt;
        }
        child = self;
        count = 0;
    }
};

}  // namespace

WideBVH bvh_widen_cpu(const BVHNode4* nodes, int32_t num_nodes, const float* prims, int64_t num_prims,
                      int leaf_prims) {
    (void)num_prims;
    WideBVH out;
    if (num_nodes <= 0) return out;
    Widener w{nodes, prims, leaf_prims, out, std::vector<int64_t>(num_nodes, 0), std::vector<int64_t>(num_nodes, 0),
               std::vector<int64_t>(num_nodes, 0)};
    w.count_prims(0);
    if (w.total[0] == 0) return out;
    out.nodes.reserve(num_nodes / 2 + 1);
    out.packets.reserve(w.total[0] / 2 + 1);
    Slot4 root{AABB(), 0, 0};
    w.widen(root, out.root_child, out.root_count);
    return out;
}

// Rays in flight per thread: each step advances one of them, so the out-of-order core overlaps their node loads.
constexpr int kInterleave = 8;

template <bool ANY_HIT>
void intersect_range(const BVHNode4* nodes, int32_t num_nodes, const float* prims, const int32_t* prim_ids,
                     int32_t num_triangles, const float* origins, const float* directions, const float* tmin,
                     const float* tmax, int64_t begin, int64_t end, float* t_out, int32_t* prim_out, float* u_out,
                     float* v_out, bool* hit_out) {
    BVHQuery q[kInterleave];
    int64_t ray[kInterleave];
    int64_t next = begin;
    int live = 0;
    auto start = [&](int k) {
        int64_t i = next++;
        ray[k] = i;
        query_begin(q[k], num_nodes, Vec3::load(origins + 3 * i), Vec3::load(directions + 3 * i), tmin[i], tmax[i]);
    };
    auto finish = [&](int k) {
        int64_t i = ray[k];
        Hit hit;
        bool h = query_end(q[k], prims, prim_ids, num_triangles, hit);
        if (ANY_HIT) {
            hit_out[i] = h;
        } else {
            t_out[i] = hit.t;
            prim_out[i] = hit.prim;
            u_out[i] = hit.u;
            v_out[i] = hit.v;
        }
    };
    for (int k = 0; k < kInterleave && next < end; ++k, ++live) start(k);
    while (live > 0) {
        for (int k = 0; k < live; ++k) {
            if (q[k].done || query_step<ANY_HIT>(q[k], nodes, prims)) {
                finish(k);
                if (next < end) {
                    start(k);
                } else {  // compact: move the last live slot here
                    --live;
                    if (k != live) {
                        q[k] = q[live];
                        ray[k] = ray[live];
                    }
                    --k;
                }
            }
        }
    }
}

void bvh_intersect_cpu(const BVHNode4* nodes, int32_t num_nodes, const float* prims, const int32_t* prim_ids,
                       int32_t num_triangles, const float* origins, const float* directions, const float* tmin,
                       const float* tmax, int64_t num_rays, bool any_hit, float* t_out, int32_t* prim_out,
                       float* u_out, float* v_out, bool* hit_out, bool wide, int packet) {
#if RADIANT_WIDE_BVH
    if (wide) {
        const WideBVH wb = bvh_widen_cpu(nodes, num_nodes, prims, 0, kWideLeafPrims);
        const WideBVHView view = wb.view();
#if RADIANT_PACKET_BVH
        if (packet >= 0) {  // packets of kPacketRays consecutive rays (bvh_wide.h packet_traverse)
            parallel_chunks(num_rays, 1024, [&](int64_t begin, int64_t end) {
                for (int64_t g = begin; g < end; g += kPacketRays) {
                    const int n = (int)std::min<int64_t>(kPacketRays, end - g);
                    PacketRays pr;
                    for (int i = 0; i < kPacketRays; ++i) {
                        const int64_t j = g + std::min(i, n - 1);
                        pr.ox[i] = origins[3 * j]; pr.oy[i] = origins[3 * j + 1]; pr.oz[i] = origins[3 * j + 2];
                        pr.dx[i] = directions[3 * j]; pr.dy[i] = directions[3 * j + 1];
                        pr.dz[i] = directions[3 * j + 2];
                        pr.tmin[i] = tmin[j];
                        pr.t[i] = tmax[j];
                        pr.u[i] = pr.v[i] = 0.f;
                        pr.best[i] = -1;
                    }
                    const uint32_t active = (1u << n) - 1u;
                    if (any_hit) {
                        const uint32_t h = packet_traverse<true>(view, prims, pr, active, packet);
                        for (int i = 0; i < n; ++i) hit_out[g + i] = (h >> i) & 1u;
                    } else {
                        packet_traverse<false>(view, prims, pr, active, packet);
                        for (int i = 0; i < n; ++i) {
                            Hit hit;
                            finish_hit(pr.best[i], false, Vec3(pr.ox[i], pr.oy[i], pr.oz[i]),
                                       Vec3(pr.dx[i], pr.dy[i], pr.dz[i]), pr.t[i], pr.u[i], pr.v[i], prims, prim_ids,
                                       num_triangles, hit);
                            t_out[g + i] = hit.t;
                            prim_out[g + i] = hit.prim;
                            u_out[g + i] = hit.u;
                            v_out[g + i] = hit.v;
                        }
                    }
                }
            });
            return;
        }
#endif
        parallel_chunks(num_rays, 1024, [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
                Vec3 o = Vec3::load(origins + 3 * i), d = Vec3::load(directions + 3 * i);
                Hit hit;
                if (any_hit) {
                    hit_out[i] = wide_traverse<true>(view, prims, prim_ids, num_triangles, o, d, tmin[i], tmax[i], hit);
                } else {
                    wide_traverse<false>(view, prims, prim_ids, num_triangles, o, d, tmin[i], tmax[i], hit);
                    t_out[i] = hit.t;
                    prim_out[i] = hit.prim;
                    u_out[i] = hit.u;
                    v_out[i] = hit.v;
                }
            }
        });
        return;
    }
#else
    (void)wide;
#endif
    (void)packet;
    parallel_chunks(num_rays, 1024, [&](int64_t begin, int64_t end) {
        if (any_hit)
            intersect_range<true>(nodes, num_nodes, prims, prim_ids, num_triangles, origins, directions, tmin, tmax,
                                  begin, end, t_out, prim_out, u_out, v_out, hit_out);
        else
            intersect_range<false>(nodes, num_nodes, prims, prim_ids, num_triangles, origins, directions, tmin, tmax,
                                   begin, end, t_out, prim_out, u_out, v_out, hit_out);
    });
}

}  // namespace radiant

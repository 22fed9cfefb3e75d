;; GF(2^8) matrix × byte-rows kernel for Reed-Solomon (src/storage/codec/reed-solomon.ts), WebAssembly SIMD.
;; Build: scripts/build-rs-simd.sh (wat2wasm) -> src/storage/codec/rs-simd.wasm.
;;
;; Split-nibble table multiply (as in ISA-L, klauspost/reedsolomon's SSSE3/AVX2 code, and J. S. Plank,
;; K. M. Greenan, E. L. Miller, "Screaming Fast Galois Field Arithmetic Using Intel SIMD Instructions",
;; FAST 2013): for a coefficient c, lo[x] = c·x and hi[x] = c·(x << 4) for x < 16, so for any byte b
;; c·b = lo[b & 15] XOR hi[b >> 4]. i8x16.relaxed_swizzle does 16 such lookups at once.
;;
;; mul_rows(tables, in, out, nIn, nOut, len, stride):
;;   out + r·stride [0, len) = XOR over i < nIn of c[r][i] · (in + i·stride [0, len))   for r < nOut
;;   tables holds, for each r then i, 32 bytes: lo (16) then hi (16) of c[r][i].
;;   len is a positive multiple of 16. Output rows are computed 4, then 2, then 1 at a time, so each input
;;   vector is loaded and split into nibbles once per group of rows.
(module
  (memory (export "memory") 16)

  (func (export "mul_rows")
    (param $tables i32) (param $in i32) (param $out i32)
    (param $nIn i32) (param $nOut i32) (param $len i32) (param $stride i32)
    (local $r i32) (local $rowBytes i32)
    (local.set $rowBytes (i32.shl (local.get $nIn) (i32.const 5)))
    (block $done
      (loop $by4
        (br_if $done (i32.gt_u (i32.add (local.get $r) (i32.const 4)) (local.get $nOut)))
        (call $rows4
          (i32.add (local.get $tables) (i32.mul (local.get $r) (local.get $rowBytes)))
          (local.get $in)
          (i32.add (local.get $out) (i32.mul (local.get $r) (local.get $stride)))
          (local.get $nIn) (local.get $len) (local.get $stride) (local.get $rowBytes))
        (local.set $r (i32.add (local.get $r) (i32.const 4)))
        (br $by4)))
    (if (i32.le_u (i32.add (local.get $r) (i32.const 2)) (local.get $nOut))
      (then
        (call $rows2
          (i32.add (local.get $tables) (i32.mul (local.get $r) (local.get $rowBytes)))
          (local.get $in)
          (i32.add (local.get $out) (i32.mul (local.get $r) (local.get $stride)))
          (local.get $nIn) (local.get $len) (local.get $stride) (local.get $rowBytes))
        (local.set $r (i32.add (local.get $r) (i32.const 2)))))
    (if (i32.lt_u (local.get $r) (local.get $nOut))
      (then
        (call $rows1
          (i32.add (local.get $tables) (i32.mul (local.get $r) (local.get $rowBytes)))
          (local.get $in)
          (i32.add (local.get $out) (i32.mul (local.get $r) (local.get $stride)))
          (local.get $nIn) (local.get $len) (local.get $stride)))))

  ;; Four output rows: tables of row q at $t + q·$rowBytes, output row q at $out + q·$stride.
  (func $rows4
    (param $t i32) (param $in i32) (param $out i32)
    (param $nIn i32) (param $len i32) (param $stride i32) (param $rowBytes i32)
    (local $j i32) (local $i i32) (local $pin i32) (local $pt i32)
    (local $v v128) (local $lo v128) (local $hi v128) (local $mask v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $rb2 i32) (local $rb3 i32) (local $pout i32)
    (local.set $mask (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
    (local.set $rb2 (i32.shl (local.get $rowBytes) (i32.const 1)))
    (local.set $rb3 (i32.add (local.get $rb2) (local.get $rowBytes)))
    (loop $cols
      (local.set $a0 (v128.const i64x2 0 0))
      (local.set $a1 (v128.const i64x2 0 0))
      (local.set $a2 (v128.const i64x2 0 0))
      (local.set $a3 (v128.const i64x2 0 0))
      (local.set $pin (i32.add (local.get $in) (local.get $j)))
      (local.set $pt (local.get $t))
      (local.set $i (local.get $nIn))
      (loop $inputs
        (local.set $v (v128.load (local.get $pin)))
        (local.set $lo (v128.and (local.get $v) (local.get $mask)))
        (local.set $hi (i8x16.shr_u (local.get $v) (i32.const 4)))
        (local.set $a0 (v128.xor (local.get $a0) (v128.xor
          (i8x16.relaxed_swizzle (v128.load (local.get $pt)) (local.get $lo))
          (i8x16.relaxed_swizzle (v128.load offset=16 (local.get $pt)) (local.get $hi)))))
        (local.set $a1 (v128.xor (local.get $a1) (v128.xor
          (i8x16.relaxed_swizzle (v128.load (i32.add (local.get $pt) (local.get $rowBytes))) (local.get $lo))
          (i8x16.relaxed_swizzle (v128.load offset=16 (i32.add (local.get $pt) (local.get $rowBytes))) (local.get $hi)))))
        (local.set $a2 (v128.xor (local.get $a2) (v128.xor
          (i8x16.relaxed_swizzle (v128.load (i32.add (local.get $pt) (local.get $rb2))) (local.get $lo))
          (i8x16.relaxed_swizzle (v128.load offset=16 (i32.add (local.get $pt) (local.get $rb2))) (local.get $hi)))))
        (local.set $a3 (v128.xor (local.get $a3) (v128.xor
          (i8x16.relaxed_swizzle (v128.load (i32.add (local.get $pt) (local.get $rb3))) (local.get $lo))
          (i8x16.relaxed_swizzle (v128.load offset=16 (i32.add (local.get $pt) (local.get $rb3))) (local.get $hi)))))
        (local.set $pin (i32.add (local.get $pin) (local.get $stride)))
        (local.set $pt (i32.add (local.get $pt) (i32.const 32)))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br_if $inputs (local.get $i)))
      (local.set $pout (i32.add (local.get $out) (local.get $j)))
      (v128.store (local.get $pout) (local.get $a0))
      (local.set $pout (i32.add (local.get $pout) (local.get $stride)))
      (v128.store (local.get $pout) (local.get $a1))
      (local.set $pout (i32.add (local.get $pout) (local.get $stride)))
      (v128.store (local.get $pout) (local.get $a2))
      (local.set $pout (i32.add (local.get $pout) (local.get $stride)))
      (v128.store (local.get $pout) (local.get $a3))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br_if $cols (i32.lt_u (local.get $j) (local.get $len)))))

  ;; Two output rows.
  (func $rows2
    (param $t i32) (param $in i32) (param $out i32)
    (param $nIn i32) (param $len i32) (param $stride i32) (param $rowBytes i32)
    (local $j i32) (local $i i32) (local $pin i32) (local $pt i32)
    (local $v v128) (local $lo v128) (local $hi v128) (local $mask v128)
    (local $a0 v128) (local $a1 v128)
    (local.set $mask (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
    (loop $cols
      (local.set $a0 (v128.const i64x2 0 0))
      (local.set $a1 (v128.const i64x2 0 0))
      (local.set $pin (i32.add (local.get $in) (local.get $j)))
      (local.set $pt (local.get $t))
      (local.set $i (local.get $nIn))
      (loop $inputs
        (local.set $v (v128.load (local.get $pin)))
        (local.set $lo (v128.and (local.get $v) (local.get $mask)))
        (local.set $hi (i8x16.shr_u (local.get $v) (i32.const 4)))
        (local.set $a0 (v128.xor (local.get $a0) (v128.xor
          (i8x16.relaxed_swizzle (v128.load (local.get $pt)) (local.get $lo))
          (i8x16.relaxed_swizzle (v128.load offset=16 (local.get $pt)) (local.get $hi)))))
        (local.set $a1 (v128.xor (local.get $a1) (v128.xor
          (i8x16.relaxed_swizzle (v128.load (i32.add (local.get $pt) (local.get $rowBytes))) (local.get $lo))
          (i8x16.relaxed_swizzle (v128.load offset=16 (i32.add (local.get $pt) (local.get $rowBytes))) (local.get $hi)))))
        (local.set $pin (i32.add (local.get $pin) (local.get $stride)))
        (local.set $pt (i32.add (local.get $pt) (i32.const 32)))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br_if $inputs (local.get $i)))
      (v128.store (i32.add (local.get $out) (local.get $j)) (local.get $a0))
      (v128.store (i32.add (i32.add (local.get $out) (local.get $stride)) (local.get $j)) (local.get $a1))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br_if $cols (i32.lt_u (local.get $j) (local.get $len)))))

  ;; One output row.
  (func $rows1
    (param $t i32) (param $in i32) (param $out i32)
    (param $nIn i32) (param $len i32) (param $stride i32)
    (local $j i32) (local $i i32) (local $pin i32) (local $pt i32)
    (local $v v128) (local $mask v128) (local $a0 v128)
    (local.set $mask (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
    (loop $cols
      (local.set $a0 (v128.const i64x2 0 0))
      (local.set $pin (i32.add (local.get $in) (local.get $j)))
      (local.set $pt (local.get $t))
      (local.set $i (local.get $nIn))
      (loop $inputs
        (local.set $v (v128.load (local.get $pin)))
        (local.set $a0 (v128.xor (local.get $a0) (v128.xor
          (i8x16.relaxed_swizzle (v128.load (local.get $pt)) (v128.and (local.get $v) (local.get $mask)))
          (i8x16.relaxed_swizzle (v128.load offset=16 (local.get $pt)) (i8x16.shr_u (local.get $v) (i32.const 4))))))
        (local.set $pin (i32.add (local.get $pin) (local.get $stride)))
        (local.set $pt (i32.add (local.get $pt) (i32.const 32)))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br_if $inputs (local.get $i)))
      (v128.store (i32.add (local.get $out) (local.get $j)) (local.get $a0))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br_if $cols (i32.lt_u (local.get $j) (local.get $len))))))

;; Functions that never name the import must keep their exact bytes.
(module
  (import "env" "secret" (func $secret (param i32) (result i32)))
  (memory 1)
  (func $fib (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func $touches (result i32) (call $secret (call $fib (i32.const 10))))
  (func $store (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func $loop (param $n i32) (result i32) (local $acc i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $acc (i32.add (local.get $acc) (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $acc))
  (func (export "run") (result i32) (call $touches)))

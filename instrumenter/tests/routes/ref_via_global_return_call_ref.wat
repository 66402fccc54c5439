;; Route 3: a reference stored in a mutable global at run time reaches `return_call_ref`.
(module
  (type $t (func (param i32) (result i32)))
  (import "env" "secret" (func $secret (type $t)))
  (global $g (mut (ref null $t)) (ref.null $t))
  (elem declare func $secret)
  (func (export "run") (result i32)
    (global.set $g (ref.func $secret))
    (return_call_ref $t (i32.const 42) (global.get $g))))

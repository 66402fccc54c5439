;; wit-component's wiring: the main module owns the memory, so the import that needs
;; it is lowered after main is instantiated and reaches main through a shim's table,
;; which a fixup instance fills; the import without memory options is lowered before
;; main and handed to it directly.
(component
  (import "example:host/net" (instance $net
    (export "read-file" (func (result s32)))
    (export "send" (func (param "data" string) (result s32)))))
  (core module $shim
    (type $t (func (param i32 i32) (result i32)))
    (table (export "$imports") 1 1 funcref)
    (func (export "0") (type $t) local.get 0 local.get 1 i32.const 0 call_indirect (type $t)))
  (core module $fixup
    (type $t (func (param i32 i32) (result i32)))
    (import "" "$imports" (table 1 1 funcref))
    (import "" "0" (func $send (type $t)))
    (elem (i32.const 0) func $send))
  (core module $main
    (import "example:host/net" "read-file" (func $read (result i32)))
    (import "example:host/net" "send" (func $send (param i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 16) "secret")
    (func (export "run") (param i32) (result i32)
      (if (local.get 0) (then (drop (call $read))))
      (call $send (i32.const 16) (i32.const 6))))
  (core instance $shim (instantiate $shim))
  (alias core export $shim "0" (core func $indirect-send))
  (core func $read (canon lower (func $net "read-file")))
  (core instance $i (instantiate $main
    (with "example:host/net" (instance (export "read-file" (func $read)) (export "send" (func $indirect-send))))))
  (alias core export $i "memory" (core memory $memory))
  (core func $send (canon lower (func $net "send") (memory $memory)))
  (core instance (instantiate $fixup
    (with "" (instance (export "$imports" (table $shim "$imports")) (export "0" (func $send))))))
  (func (export "run") (param "read" bool) (result s32) (canon lift (core func $i "run"))))

;; The simplest wiring: both imports lowered before the core module that calls them,
;; with a memory of their own instance, and handed to it in one instance.
(component
  (import "example:host/net" (instance $net
    (export "read-file" (func (result s32)))
    (export "send" (func (param "data" string) (result s32)))))
  (core module $mem (memory (export "memory") 1))
  (core instance $m (instantiate $mem))
  (alias core export $m "memory" (core memory $memory))
  (core func $read (canon lower (func $net "read-file")))
  (core func $send (canon lower (func $net "send") (memory $memory)))
  (core module $main
    (import "example:host/net" "read-file" (func $read (result i32)))
    (import "example:host/net" "send" (func $send (param i32 i32) (result i32)))
    (import "env" "memory" (memory 1))
    (data (i32.const 16) "secret")
    (func (export "run") (param i32) (result i32)
      (if (local.get 0) (then (drop (call $read))))
      (call $send (i32.const 16) (i32.const 6))))
  (core instance $i (instantiate $main
    (with "example:host/net" (instance (export "read-file" (func $read)) (export "send" (func $send))))
    (with "env" (instance (export "memory" (memory $memory))))))
  (func (export "run") (param "read" bool) (result s32) (canon lift (core func $i "run"))))

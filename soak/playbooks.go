package main

// The soak's two playbooks. welcome enrolls on every signup event (each
// customer signs up once); big_spender enrolls on the first purchase of 10
// or more (reentry never), so the expected number of enrollments follows
// from the accepted events alone.
const welcomeYAML = `
playbook: soak_welcome
stage: onboard
trigger: { event: signup }
templates:
  hello:
    en: { subject: "Welcome {{ customer.name }}", text: "Hi {{ customer.name }}. {{ unsubscribe_url }}" }
    zh: { subject: "欢迎 {{ customer.name }}", text: "你好 {{ customer.name }}。{{ unsubscribe_url }}" }
steps:
  - send: { channel: email, template: hello, transactional: true }
  - points: { award: 10, reason: welcome }
`

const bigSpenderYAML = `
playbook: soak_big_spender
stage: loyalty
trigger: { event: purchase, when: "event.amount >= 10" }
entry: { reentry: never }
steps:
  - points: { award: "event.amount * 0.1", reason: purchase }
  - update: { add_tags: [big_spender] }
`

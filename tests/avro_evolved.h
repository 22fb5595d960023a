/*
 * avro_evolved.h — the evolved writer schemas the Avro tests register
 * under Confluent ids 21-23 (auth.x, usage.x, signal.x), shared by
 * tests/unit/test_avro.c and tests/fuzz/fuzz_avro.c so the two always
 * exercise the same writers. What they cover is described in
 * test_avro.c where it includes this file. Test data only: each including
 * file gets its own copy of these statics.
 */
#ifndef MG_TEST_AVRO_EVOLVED_H
#define MG_TEST_AVRO_EVOLVED_H

static const char mg_test_auth_x[] =
        "{\"type\":\"record\",\"name\":\"AuthEvent\",\"namespace\":"
        "\"io.mintgate.events\",\"fields\":["
        "{\"name\":\"region\",\"type\":\"string\"},"
        "{\"name\":\"grant_type\",\"type\":{\"type\":\"enum\",\"name\":"
        "\"GrantType\",\"symbols\":[\"magic\",\"device_code\","
        "\"authorization_code\",\"jwt_bearer\",\"refresh_token\","
        "\"token_exchange\",\"client_credentials\"]}},"
        "{\"name\":\"scopes\",\"type\":{\"type\":\"array\",\"items\":"
        "[\"null\",\"string\"]}},"
        "{\"name\":\"identity\",\"type\":\"string\"},"
        "{\"name\":\"event_id\",\"type\":\"string\"},"
        "{\"name\":\"ts\",\"type\":\"long\"},"
        "{\"name\":\"identity_kind\",\"type\":{\"type\":\"enum\",\"name\":"
        "\"IdentityKind\",\"symbols\":[\"robot\",\"workload\",\"unknown\","
        "\"ai_agent\"]}},"
        "{\"name\":\"client_id\",\"type\":[\"null\",\"string\",\"int\"]},"
        "{\"name\":\"source_ip\",\"type\":\"string\"},"
        "{\"name\":\"user_agent\",\"type\":[\"string\",\"null\"]},"
        "{\"name\":\"auth_method\",\"type\":{\"type\":\"enum\",\"name\":"
        "\"AuthMethod\",\"symbols\":[\"api_key\",\"oidc_federation\","
        "\"x509_svid\",\"jwt_svid\",\"mtls\",\"private_key_jwt\","
        "\"client_secret\"]}},"
        "{\"name\":\"audience\",\"type\":\"string\"},"
        "{\"name\":\"extra\",\"type\":{\"type\":\"map\",\"values\":[\"null\","
        "{\"type\":\"record\",\"name\":\"Blob\",\"fields\":["
        "{\"name\":\"b\",\"type\":\"bytes\"},"
        "{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"F4\","
        "\"size\":4}},"
        "{\"name\":\"d\",\"type\":\"double\"},"
        "{\"name\":\"x\",\"type\":\"float\"},"
        "{\"name\":\"ok\",\"type\":\"boolean\"}]}]}},"
        "{\"name\":\"outcome\",\"type\":{\"type\":\"enum\",\"name\":"
        "\"AuthOutcome\",\"symbols\":[\"success\",\"failure\"]}},"
        "{\"name\":\"failure_reason\",\"type\":\"null\"},"
        "{\"name\":\"token_id\",\"type\":[\"null\",\"string\"]}]}";

static const char mg_test_usage_x[] =
        "{\"type\":\"record\",\"name\":\"UsageEvent\",\"namespace\":"
        "\"io.mintgate.events\",\"fields\":["
        "{\"name\":\"bytes\",\"type\":\"int\"},"
        "{\"name\":\"event_id\",\"type\":\"string\"},"
        "{\"name\":\"ts\",\"type\":[\"long\",\"int\",\"null\"]},"
        "{\"name\":\"identity\",\"type\":\"string\"},"
        "{\"name\":\"resource\",\"type\":\"string\"},"
        "{\"name\":\"g\",\"type\":{\"type\":\"array\",\"items\":\"long\"}},"
        "{\"name\":\"action\",\"type\":\"string\"},"
        "{\"name\":\"token_id\",\"type\":[\"null\",\"string\",\"boolean\"]},"
        "{\"name\":\"source_ip\",\"type\":\"null\"},"
        "{\"name\":\"status\",\"type\":[\"null\",\"int\"]}]}";

static const char mg_test_signal_x[] =
        "{\"type\":\"record\",\"name\":\"SignalEvent\",\"namespace\":"
        "\"io.mintgate.events\",\"fields\":["
        "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":"
        "\"SignalKind\",\"symbols\":[\"release\",\"quarantine\","
        "\"credential_compromise\",\"secret_exposed\"]}},"
        "{\"name\":\"identity\",\"type\":\"string\"},"
        "{\"name\":\"next\",\"type\":[\"null\",{\"type\":\"record\","
        "\"name\":\"Node\",\"fields\":[{\"name\":\"v\",\"type\":\"int\"},"
        "{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}]},"
        "{\"name\":\"event_id\",\"type\":\"string\"},"
        "{\"name\":\"ts\",\"type\":\"long\"},"
        "{\"name\":\"source\",\"type\":\"string\"}]}";

#endif /* MG_TEST_AVRO_EVOLVED_H */

package oauthtest

import "net/http"

// scopesSupported are the scopes advertised in the metadata documents.
var scopesSupported = []string{
	"system/Patient.rs", "system/Patient.read", "system/*.rs", "system/*.read",
	"user/Patient.rs", "patient/Patient.rs", "offline_access",
}

// authMethodsSupported are the client authentication methods, for every endpoint.
var authMethodsSupported = []string{AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT, AuthNone, AuthTLSClientAuth, AuthSelfSignedTLSClientAuth}

// handleASMetadata serves RFC 8414 authorization server metadata, also at
// the OpenID configuration path (the server issues no ID tokens).
func (s *Server) handleASMetadata(w http.ResponseWriter, _ *http.Request) {
	algs := asymmetricAlgNames()
	writeJSON(w, http.StatusOK, "application/json", map[string]any{
		"issuer":                                                   s.Issuer(),
		"authorization_endpoint":                                   s.AuthorizeURL(),
		"token_endpoint":                                           s.TokenURL(),
		"revocation_endpoint":                                      s.RevocationURL(),
		"introspection_endpoint":                                   s.IntrospectionURL(),
		"device_authorization_endpoint":                            s.DeviceAuthorizationURL(),
		"grant_types_supported":                                    allGrantTypes,
		"response_types_supported":                                 []string{"code"},
		"response_modes_supported":                                 []string{"query"},
		"token_endpoint_auth_methods_supported":                    authMethodsSupported,
		"token_endpoint_auth_signing_alg_values_supported":         algs,
		"revocation_endpoint_auth_methods_supported":               authMethodsSupported,
		"revocation_endpoint_auth_signing_alg_values_supported":    algs,
		"introspection_endpoint_auth_methods_supported":            authMethodsSupported,
		"introspection_endpoint_auth_signing_alg_values_supported": algs,
		"code_challenge_methods_supported":                         []string{"S256"},
		"scopes_supported":                                         scopesSupported,
		"authorization_response_iss_parameter_supported":           true,
		"dpop_signing_alg_values_supported":                        DPoPAlgs,
		"tls_client_certificate_bound_access_tokens":               true,
	})
}

// handleSMARTConfig serves the SMART App Launch 2.x discovery document.
func (s *Server) handleSMARTConfig(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, "application/json", map[string]any{
		"issuer":                                           s.Issuer(),
		"authorization_endpoint":                           s.AuthorizeURL(),
		"token_endpoint":                                   s.TokenURL(),
		"revocation_endpoint":                              s.RevocationURL(),
		"introspection_endpoint":                           s.IntrospectionURL(),
		"device_authorization_endpoint":                    s.DeviceAuthorizationURL(),
		"token_endpoint_auth_methods_supported":            authMethodsSupported,
		"token_endpoint_auth_signing_alg_values_supported": asymmetricAlgNames(),
		"grant_types_supported":                            allGrantTypes,
		"scopes_supported":                                 scopesSupported,
		"response_types_supported":                         []string{"code"},
		"code_challenge_methods_supported":                 []string{"S256"},
		"capabilities": []string{
			"launch-standalone",
			"client-public",
			"client-confidential-symmetric",
			"client-confidential-asymmetric",
			"permission-offline",
			"permission-v1",
			"permission-v2",
		},
	})
}

// handleCapabilityStatement serves GET /fhir/metadata without
// authentication, with the SMART oauth-uris extension.
func (s *Server) handleCapabilityStatement(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, fhirJSON, map[string]any{
		"resourceType": "CapabilityStatement",
		"status":       "active",
		"date":         "2024-01-01",
		"kind":         "instance",
		"fhirVersion":  "4.0.1",
		"format":       []string{"json"},
		"implementation": map[string]string{
			"description": "oauthtest protected FHIR resource",
			"url":         s.FHIRBase(),
		},
		"rest": []map[string]any{{
			"mode": "server",
			"security": map[string]any{
				"service": []map[string]any{{
					"coding": []map[string]string{{
						"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
						"code":   "SMART-on-FHIR",
					}},
				}},
				"extension": []map[string]any{{
					"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
					"extension": []map[string]string{
						{"url": "token", "valueUri": s.TokenURL()},
						{"url": "authorize", "valueUri": s.AuthorizeURL()},
						{"url": "revoke", "valueUri": s.RevocationURL()},
						{"url": "introspect", "valueUri": s.IntrospectionURL()},
					},
				}},
			},
			"resource": []map[string]any{{
				"type": "Patient",
				"interaction": []map[string]string{
					{"code": "read"}, {"code": "search-type"},
				},
				"searchParam": []map[string]string{{"name": "_id", "type": "token"}},
			}},
		}},
	})
}

package oauthtest

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

const fhirJSON = "application/fhir+json"

// b64token is the token68-like syntax of RFC 6750 §2.1.
var b64token = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)

type patient struct {
	ResourceType string      `json:"resourceType"`
	ID           string      `json:"id"`
	Active       bool        `json:"active"`
	Name         []humanName `json:"name"`
	Gender       string      `json:"gender"`
	BirthDate    string      `json:"birthDate"`
}

type humanName struct {
	Family string   `json:"family"`
	Given  []string `json:"given"`
}

// patients is the fixed data set of the resource.
var patients = []patient{
	{ResourceType: "Patient", ID: "p1", Active: true, Name: []humanName{{Family: "Lovelace", Given: []string{"Ada"}}}, Gender: "female", BirthDate: "1815-12-10"},
	{ResourceType: "Patient", ID: "p2", Active: true, Name: []humanName{{Family: "Turing", Given: []string{"Alan"}}}, Gender: "male", BirthDate: "1912-06-23"},
}

// operationOutcome returns a FHIR OperationOutcome with one issue.
func operationOutcome(code, diagnostics string) map[string]any {
	return map[string]any{
		"resourceType": "OperationOutcome",
		"issue": []map[string]any{{
			"severity": "error", "code": code, "diagnostics": diagnostics,
		}},
	}
}

// authorizeResource checks the bearer token of a request to the protected
// resource for a Patient interaction ('r' read, 's' search). On failure it
// writes the RFC 6750 §3 answer and returns false.
func (s *Server) authorizeResource(w http.ResponseWriter, r *http.Request, params url.Values, interaction byte) bool {
	status, errCode, desc := http.StatusOK, "", ""
	headers := r.Header.Values("Authorization")
	var tok string
	var dpop bool // the DPoP scheme (RFC 9449 §7.1)
	nonce := ""   // DPoP-Nonce to send back
	switch {
	case params.Has("access_token"):
		status, errCode, desc = http.StatusBadRequest, "invalid_request", "send the access token in the Authorization header only"
	case len(headers) > 1:
		status, errCode, desc = http.StatusBadRequest, "invalid_request", "more than one Authorization header"
	case len(headers) == 0:
		status = http.StatusUnauthorized
	default:
		scheme, t, _ := strings.Cut(headers[0], " ")
		dpop = strings.EqualFold(scheme, "DPoP")
		if !strings.EqualFold(scheme, "Bearer") && !dpop {
			status = http.StatusUnauthorized
		} else if !b64token.MatchString(t) {
			status, errCode, desc = http.StatusBadRequest, "invalid_request", "malformed Bearer credentials"
		} else {
			tok = t
		}
	}

	s.mu.Lock()
	s.stats.ResourceRequests++
	if status == http.StatusOK {
		a, why := s.activeAccessLocked(tok)
		switch {
		case a == nil:
			status, errCode, desc = http.StatusUnauthorized, "invalid_token", why
		case s.bindingError(r, a, tok, dpop, &errCode, &desc, &nonce):
			status = http.StatusUnauthorized
		case !scopeAllowsPatient(a.scopes, interaction):
			status, errCode, desc = http.StatusForbidden, "insufficient_scope", "the token's scope does not allow this Patient interaction"
		}
	}
	if status != http.StatusOK {
		s.stats.ResourceRejected++
	}
	s.mu.Unlock()
	if status == http.StatusOK {
		return true
	}

	challenge := `Bearer realm="oauthtest"`
	if dpop || strings.Contains(errCode, "dpop") {
		challenge = `DPoP realm="oauthtest", algs="` + strings.Join(DPoPAlgs, " ") + `"`
	}
	if nonce != "" {
		w.Header().Set("DPoP-Nonce", nonce)
	}
	if errCode != "" {
		challenge += fmt.Sprintf(`, error=%q, error_description=%q`, errCode, desc)
	}
	if errCode == "insufficient_scope" {
		challenge += `, scope="system/Patient.rs"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	if desc == "" {
		desc = "authentication required"
	}
	s.logInfo("oauthtest: resource request rejected", "path", r.URL.Path, "status", status, "error", errCode)
	writeJSON(w, status, fhirJSON, operationOutcome("security", desc))
	return false
}

// scopeAllowsPatient reports whether scopes permit a Patient interaction:
// SMART v1 (".read", ".*") or v2 (".rs", ".cruds", … containing the
// interaction letter) for Patient or "*", in the system/, user/ or patient/
// context. A token without any scope is allowed.
func scopeAllowsPatient(scopes []string, interaction byte) bool {
	if len(scopes) == 0 {
		return true
	}
	for _, sc := range scopes {
		ctx, rest, ok := strings.Cut(sc, "/")
		if !ok || (ctx != "system" && ctx != "user" && ctx != "patient") {
			continue
		}
		res, perm, ok := strings.Cut(rest, ".")
		if !ok || (res != "Patient" && res != "*") {
			continue
		}
		perm, _, _ = strings.Cut(perm, "?") // v2 fine-grained query: ignore
		switch perm {
		case "read", "*":
			return true
		case "write":
			continue
		}
		if validV2Permissions(perm) && strings.IndexByte(perm, interaction) >= 0 {
			return true
		}
	}
	return false
}

// validV2Permissions checks a SMART v2 permission string: a non-empty
// subsequence of "cruds" in that order.
func validV2Permissions(p string) bool {
	if p == "" {
		return false
	}
	order := "cruds"
	i := 0
	for j := 0; j < len(p); j++ {
		k := strings.IndexByte(order[i:], p[j])
		if k < 0 {
			return false
		}
		i += k + 1
	}
	return true
}

// handlePatientSearch serves GET /fhir/Patient and POST /fhir/Patient/_search
// (form body). The only search parameter honoured is _id.
func (s *Server) handlePatientSearch(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/x-www-form-urlencoded" {
			writeJSON(w, http.StatusUnsupportedMediaType, fhirJSON, operationOutcome("invalid", "_search needs a form body"))
			return
		}
		form, oerr := readForm(r)
		if oerr != nil {
			writeJSON(w, http.StatusBadRequest, fhirJSON, operationOutcome("invalid", oerr.desc))
			return
		}
		for k, v := range form {
			params[k] = append(params[k], v...)
		}
	}
	if !s.authorizeResource(w, r, params, 's') {
		return
	}
	var ids []string
	for _, v := range params["_id"] {
		ids = append(ids, strings.Split(v, ",")...)
	}
	var entries []map[string]any
	for _, p := range patients {
		if len(ids) > 0 && !slices.Contains(ids, p.ID) {
			continue
		}
		entries = append(entries, map[string]any{
			"fullUrl":  s.FHIRBase() + "/Patient/" + p.ID,
			"resource": p,
			"search":   map[string]string{"mode": "match"},
		})
	}
	if entries == nil {
		entries = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, fhirJSON, map[string]any{
		"resourceType": "Bundle",
		"type":         "searchset",
		"total":        len(entries),
		"link":         []map[string]string{{"relation": "self", "url": s.FHIRBase() + "/Patient"}},
		"entry":        entries,
	})
}

// handlePatientRead serves GET /fhir/Patient/{id}.
func (s *Server) handlePatientRead(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeResource(w, r, r.URL.Query(), 'r') {
		return
	}
	id := r.PathValue("id")
	for _, p := range patients {
		if p.ID == id {
			writeJSON(w, http.StatusOK, fhirJSON, p)
			return
		}
	}
	writeJSON(w, http.StatusNotFound, fhirJSON, operationOutcome("not-found", "Patient/"+id+" is not known"))
}

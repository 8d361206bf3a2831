package vpn

import (
	"net/http"

	"github.com/homeedge/edge/internal/ctlapi"
	"github.com/homeedge/edge/internal/ctlsock"
)

// Routes are edge-vpn's admin API.
func (s *Service) Routes() []ctlsock.Route {
	return []ctlsock.Route{
		{Method: http.MethodGet, Path: ctlapi.PathVPNPeers, Handle: func(r *http.Request) (any, error) {
			return s.listPeers(r.Context())
		}},
		{Method: http.MethodPost, Path: ctlapi.PathVPNPeers, Write: true, Handle: func(r *http.Request) (any, error) {
			var req ctlapi.VPNPeerAdd
			if err := ctlsock.DecodeBody(r, &req); err != nil {
				return nil, err
			}
			return s.addPeer(r.Context(), req, ctlsock.CallerFrom(r.Context()).String())
		}},
		{Method: http.MethodDelete, Path: ctlapi.PathVPNPeers, Write: true, Handle: func(r *http.Request) (any, error) {
			var req ctlapi.VPNPeerRef
			if err := ctlsock.DecodeBody(r, &req); err != nil {
				return nil, err
			}
			return s.removePeer(r.Context(), req.Name, ctlsock.CallerFrom(r.Context()).String())
		}},
		{Method: http.MethodGet, Path: ctlapi.PathVPNPeer, Handle: func(r *http.Request) (any, error) {
			return s.showPeer(r.Context(), r.URL.Query().Get("name"))
		}},
		{Method: http.MethodPost, Path: ctlapi.PathVPNPeer, Write: true, Handle: func(r *http.Request) (any, error) {
			var req ctlapi.VPNPeerUpdate
			if err := ctlsock.DecodeBody(r, &req); err != nil {
				return nil, err
			}
			return s.updatePeer(r.Context(), req, ctlsock.CallerFrom(r.Context()).String())
		}},
		// The config holds no secret edge-vpn keeps except a preshared
		// key, so reading it again needs write access.
		{Method: http.MethodGet, Path: ctlapi.PathVPNPeerConfig, Write: true, Handle: func(r *http.Request) (any, error) {
			q := r.URL.Query()
			return s.configOf(r.Context(), q.Get("name"), q.Get("qr"))
		}},
	}
}

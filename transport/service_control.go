package transport

import (
	"context"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/keystore"
)

// service implements meridian.v1.KeyManagement over a keystore.Service. Its methods
// only convert: errors go back untouched (keystore sentinels, wrapped) and the
// mapErrors interceptor turns them into statuses, so the mapping lives in one
// place (errors.go).
type service struct {
	apiv1.UnimplementedKeyManagementServer
	ks      keystore.Service
	members Membership
}

var _ apiv1.KeyManagementServer = (*service)(nil)

// finish returns resp unless building it recorded an error.
func finish[T any](resp T, c *conv) (T, error) {
	if c.err != nil {
		var zero T
		return zero, c.err
	}
	return resp, nil
}

// writeContext gives a write the api's request_id as its idempotency id:
// the ID of the keystore.Request on ctx, keeping whatever else the Request
// carries. It is the only place the proto field reaches the store.
func writeContext(ctx context.Context, r interface{ GetRequestId() string }) context.Context {
	req := keystore.RequestFrom(ctx)
	req.ID = r.GetRequestId()
	return keystore.WithRequest(ctx, req)
}

func writeOut(wr keystore.WriteResult) *apiv1.WriteResponse {
	return &apiv1.WriteResponse{CommitIndex: wr.CommitIndex, KeyId: wr.KeyID}
}

func (s *service) CreateKey(ctx context.Context, r *apiv1.CreateKeyRequest) (*apiv1.CreateKeyResponse, error) {
	in, err := createKeyIn(r)
	if err != nil {
		return nil, err
	}
	md, wr, err := s.ks.CreateKey(writeContext(ctx, r), in)
	if err != nil {
		return nil, err
	}
	var c conv
	return finish(&apiv1.CreateKeyResponse{KeyMetadata: keyMetadataOut(&c, md), CommitIndex: wr.CommitIndex}, &c)
}

func (s *service) DescribeKey(ctx context.Context, r *apiv1.DescribeKeyRequest) (*apiv1.DescribeKeyResponse, error) {
	md, err := s.ks.DescribeKey(ctx, r.GetKeyId())
	if err != nil {
		return nil, err
	}
	var c conv
	return finish(&apiv1.DescribeKeyResponse{KeyMetadata: keyMetadataOut(&c, md)}, &c)
}

func (s *service) ListKeys(ctx context.Context, r *apiv1.ListKeysRequest) (*apiv1.ListKeysResponse, error) {
	p, err := s.ks.ListKeys(ctx, intArg(r.GetLimit()), r.GetMarker())
	if err != nil {
		return nil, err
	}
	return listKeysOut(p), nil
}

func (s *service) UpdateKeyDescription(ctx context.Context, r *apiv1.UpdateKeyDescriptionRequest) (*apiv1.WriteResponse, error) {
	wr, err := s.ks.UpdateKeyDescription(writeContext(ctx, r), r.GetKeyId(), r.GetDescription())
	if err != nil {
		return nil, err
	}
	return writeOut(wr), nil
}

func (s *service) TagResource(ctx context.Context, r *apiv1.TagResourceRequest) (*apiv1.WriteResponse, error) {
	wr, err := s.ks.TagResource(writeContext(ctx, r), r.GetKeyId(), tagsIn(r.GetTags()))
	if err != nil {
		return nil, err
	}
	return writeOut(wr), nil
}

func (s *service) UntagResource(ctx context.Context, r *apiv1.UntagResourceRequest) (*apiv1.WriteResponse, error) {
	wr, err := s.ks.UntagResource(writeContext(ctx, r), r.GetKeyId(), r.GetTagKeys())
	if err != nil {
		return nil, err
	}
	return writeOut(wr), nil
}

func (s *service) ListResourceTags(ctx context.Context, r *apiv1.ListResourceTagsRequest) (*apiv1.ListResourceTagsResponse, error) {
	p, err := s.ks.ListResourceTags(ctx, r.GetKeyId(), intArg(r.GetLimit()), r.GetMarker())
	if err != nil {
		return nil, err
	}
	return &apiv1.ListResourceTagsResponse{Tags: tagsOut(p.Items), NextMarker: p.NextMarker, Truncated: p.Truncated}, nil
}

func (s *service) CreateAlias(ctx context.Context, r *apiv1.CreateAliasRequest) (*apiv1.WriteResponse, error) {
	wr, err := s.ks.CreateAlias(writeContext(ctx, r), r.GetAliasName(), r.GetTargetKeyId())
	if err != nil {
		return nil, err
	}
	return writeOut(wr), nil
}

func (s *service) UpdateAlias(ctx context.Context, r *apiv1.UpdateAliasRequest) (*apiv1.WriteResponse, error) {
	wr, err := s.ks.UpdateAlias(writeContext(ctx, r), r.GetAliasName(), r.GetTargetKeyId())
	if err != nil {
		return nil, err
	}
	return writeOut(wr), nil
}

func (s *service) DeleteAlias(ctx context.Context, r *apiv1.DeleteAliasRequest) (*apiv1.WriteResponse, error) {
	wr, err := s.ks.DeleteAlias(writeContext(ctx, r), r.GetAliasName())
	if err != nil {
		return nil, err
	}
	return writeOut(wr), nil
}

func (s *service) ListAliases(ctx context.Context, r *apiv1.ListAliasesRequest) (*apiv1.ListAliasesResponse, error) {
	p, err := s.ks.ListAliases(ctx, r.GetKeyId(), intArg(r.GetLimit()), r.GetMarker())
	if err != nil {
		return nil, err
	}
	return listAliasesOut(p), nil
}

func (s *service) EnableKey(ctx context.Context, r *apiv1.EnableKeyRequest) (*apiv1.WriteResponse, error) {
	wr, err := s.ks.EnableKey(writeContext(ctx, r), r.GetKeyId())
	if err != nil {
		return nil, err
	}
	return writeOut(wr), nil
}

func (s *service) DisableKey(ctx context.Context, r *apiv1.DisableKeyRequest) (*apiv1.WriteResponse, error) {
	wr, err := s.ks.DisableKey(writeContext(ctx, r), r.GetKeyId())
	if err != nil {
		return nil, err
	}
	return writeOut(wr), nil
}

func (s *service) ScheduleKeyDeletion(ctx context.Context, r *apiv1.ScheduleKeyDeletionRequest) (*apiv1.ScheduleKeyDeletionResponse, error) {
	res, err := s.ks.ScheduleKeyDeletion(writeContext(ctx, r), r.GetKeyId(), intArg(r.GetPendingWindowInDays()))
	if err != nil {
		return nil, err
	}
	var c conv
	return finish(scheduleDeletionOut(&c, res), &c)
}

func (s *service) CancelKeyDeletion(ctx context.Context, r *apiv1.CancelKeyDeletionRequest) (*apiv1.CancelKeyDeletionResponse, error) {
	wr, err := s.ks.CancelKeyDeletion(writeContext(ctx, r), r.GetKeyId())
	if err != nil {
		return nil, err
	}
	return &apiv1.CancelKeyDeletionResponse{KeyId: wr.KeyID, CommitIndex: wr.CommitIndex}, nil
}

func (s *service) EnableKeyRotation(ctx context.Context, r *apiv1.EnableKeyRotationRequest) (*apiv1.WriteResponse, error) {
	wr, err := s.ks.EnableKeyRotation(writeContext(ctx, r), r.GetKeyId(), intArg(r.GetRotationPeriodInDays()))
	if err != nil {
		return nil, err
	}
	return writeOut(wr), nil
}

func (s *service) DisableKeyRotation(ctx context.Context, r *apiv1.DisableKeyRotationRequest) (*apiv1.WriteResponse, error) {
	wr, err := s.ks.DisableKeyRotation(writeContext(ctx, r), r.GetKeyId())
	if err != nil {
		return nil, err
	}
	return writeOut(wr), nil
}

func (s *service) GetKeyRotationStatus(ctx context.Context, r *apiv1.GetKeyRotationStatusRequest) (*apiv1.GetKeyRotationStatusResponse, error) {
	st, err := s.ks.GetKeyRotationStatus(ctx, r.GetKeyId())
	if err != nil {
		return nil, err
	}
	return rotationStatusOut(st), nil
}

func (s *service) RotateKeyOnDemand(ctx context.Context, r *apiv1.RotateKeyOnDemandRequest) (*apiv1.RotateKeyOnDemandResponse, error) {
	rot, wr, err := s.ks.RotateKeyOnDemand(writeContext(ctx, r), r.GetKeyId())
	if err != nil {
		return nil, err
	}
	return &apiv1.RotateKeyOnDemandResponse{KeyId: rot.KeyID, KeyVersion: rot.KeyVersion, CommitIndex: wr.CommitIndex}, nil
}

func (s *service) ListKeyRotations(ctx context.Context, r *apiv1.ListKeyRotationsRequest) (*apiv1.ListKeyRotationsResponse, error) {
	p, err := s.ks.ListKeyRotations(ctx, r.GetKeyId(), intArg(r.GetLimit()), r.GetMarker())
	if err != nil {
		return nil, err
	}
	var c conv
	return finish(listKeyRotationsOut(&c, p), &c)
}
